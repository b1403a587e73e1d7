//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/collectord/collectord/pkg/shmring"
)

// fillResult is what fill prints.
type fillResult struct {
	Sent    int     `json:"sent"`
	Seconds float64 `json:"seconds"` // from the first send until the ring published the last
	Rate    float64 `json:"rate"`    // records per second
	Head    uint64  `json:"head"`    // the ring's head afterwards
}

// runFill sends n RFC 3164 records of about -size bytes through the
// daemon's socket, from several blocking senders, and waits until the ring
// has published them all. The messages look like an access log, each with
// its sender and number, so that queries have something to chew on.
func runFill(args []string) (any, error) {
	fs := flag.NewFlagSet("fill", flag.ContinueOnError)
	socket := fs.String("socket", "", "daemon datagram socket `path`")
	ring := fs.String("ring", "", "ring file `path`, to wait for the records")
	n := fs.Int("n", 100_000, "records to send")
	senders := fs.Int("senders", 4, "concurrent senders")
	size := fs.Int("size", 120, "approximate datagram size in `bytes`")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *socket == "" || *ring == "" || *n < 1 || *senders < 1 {
		return nil, errors.New("-socket, -ring, -n >= 1 and -senders >= 1 are required")
	}
	r, err := shmring.OpenReader(*ring)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	el, err := sendRecords(*socket, r, *n, *senders, *size)
	if err != nil {
		return nil, err
	}
	return fillResult{Sent: *n, Seconds: el.Seconds(), Rate: float64(*n) / el.Seconds(), Head: r.Head()}, nil
}

// sendRecords sends n records from senders blocking sockets and returns the
// time from the first send until r published the last.
func sendRecords(socket string, r *shmring.Reader, n, senders, size int) (time.Duration, error) {
	head0 := r.Head()
	stamp := time.Now().Format(time.Stamp)
	conns := make([]*net.UnixConn, senders)
	for s := range conns {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		conns[s] = c
	}
	var wg sync.WaitGroup
	errs := make([]error, senders)
	t0 := time.Now()
	for s, c := range conns {
		count := n / senders
		if s < n%senders {
			count++
		}
		wg.Go(func() {
			var buf []byte
			for i := range count {
				buf = fmt.Appendf(buf[:0], "<14>%s web[%d]: s=%d n=%08d GET /api/v1/items/%d status=200 bytes=%d dur_ms=%d",
					stamp, 1000+s, s, i, i%977, 100+i%4000, i%97)
				if pad := size - len(buf); pad > 0 {
					buf = append(buf, ' ')
					buf = append(buf, strings.Repeat("x", pad-1)...)
				}
				if _, err := c.Write(buf); err != nil {
					errs[s] = err
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := r.Wait(ctx, head0+uint64(n)-1); err != nil {
		return 0, fmt.Errorf("wait for the ring to reach %d (head %d): %w", head0+uint64(n), r.Head(), err)
	}
	return time.Since(t0), nil
}
