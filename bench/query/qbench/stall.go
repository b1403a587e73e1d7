//go:build linux

package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/shmring"
)

// stallResult is what stall prints. Rates are records per second from the
// first send until the ring published the last.
type stallResult struct {
	N           int       `json:"n"`
	Senders     int       `json:"senders"`
	Idle        int       `json:"idle_connections"`
	Plain       []float64 `json:"plain_rates"`
	Loaded      []float64 `json:"loaded_rates"`
	PlainMedian float64   `json:"plain_median"`
	LoadMedian  float64   `json:"loaded_median"`
	Ratio       float64   `json:"ratio_median"` // median over rounds of loaded/plain
	QueuedBytes []int     `json:"stalled_client_queued_bytes"`
}

// runStall compares the ingest rate with no query client against the rate
// with one stalled follower (a follow of everything, a 4 KiB receive
// buffer, never read) and -idle idle connections (hello only), in
// alternating rounds.
func runStall(args []string) (any, error) {
	fs := flag.NewFlagSet("stall", flag.ContinueOnError)
	socket := fs.String("socket", "", "daemon datagram socket `path`")
	ring := fs.String("ring", "", "ring file `path`")
	addr := fs.String("addr", "", "query server `host:port`")
	n := fs.Int("n", 200_000, "records per measurement")
	senders := fs.Int("senders", 4, "concurrent senders")
	size := fs.Int("size", 120, "approximate datagram size in `bytes`")
	idle := fs.Int("idle", 200, "idle connections")
	rounds := fs.Int("rounds", 5, "rounds (each: plain, then loaded)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *socket == "" || *ring == "" || *addr == "" {
		return nil, errors.New("-socket, -ring and -addr are required")
	}
	r, err := shmring.OpenReader(*ring)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	res := stallResult{N: *n, Senders: *senders, Idle: *idle}
	var ratios []float64
	for range *rounds {
		plain, err := sendRecords(*socket, r, *n, *senders, *size)
		if err != nil {
			return nil, err
		}
		conns, stalled, err := openClients(*addr, r.Head()-1, *idle)
		if err != nil {
			return nil, err
		}
		loaded, err := sendRecords(*socket, r, *n, *senders, *size)
		queued := unread(stalled)
		for _, c := range conns {
			c.Close()
		}
		if err != nil {
			return nil, err
		}
		p, l := float64(*n)/plain.Seconds(), float64(*n)/loaded.Seconds()
		res.Plain = append(res.Plain, p)
		res.Loaded = append(res.Loaded, l)
		res.QueuedBytes = append(res.QueuedBytes, queued)
		ratios = append(ratios, l/p)
	}
	res.PlainMedian, res.LoadMedian, res.Ratio = median(res.Plain), median(res.Loaded), median(ratios)
	return res, nil
}

// openClients opens idle connections and one stalled follower of
// everything after after. It returns them all, the stalled one last.
func openClients(addr string, after uint64, idle int) (conns []net.Conn, stalled net.Conn, err error) {
	defer func() {
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
		}
	}()
	hello := func(nc net.Conn) error {
		nc.Write(query.AppendFrame(nil, query.FrameHello, []byte(`{"protocol":1,"client":"qbench"}`)))
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		ft, body, err := query.NewFrameReader(bufio.NewReader(nc), query.MaxServerFrame).Next()
		if err != nil || ft != query.FrameWelcome {
			return fmt.Errorf("hello: %v %s %v", ft, body, err)
		}
		return nil
	}
	for range idle {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return conns, nil, err
		}
		conns = append(conns, nc)
		if err := hello(nc); err != nil {
			return conns, nil, err
		}
	}
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		return serr
	}}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return conns, nil, err
	}
	conns = append(conns, nc)
	if err := hello(nc); err != nil {
		return conns, nil, err
	}
	q := fmt.Appendf(nil, `{"follow":true,"after":%d}`, after)
	if _, err := nc.Write(query.AppendFrame(nil, query.FrameQuery, q)); err != nil {
		return conns, nil, err
	}
	return conns, nc, nil
}

// unread returns how many bytes wait in nc's receive queue.
func unread(nc net.Conn) int {
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
