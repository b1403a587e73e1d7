//go:build linux

// Command profile runs collectord's ingest path under the Go CPU profiler,
// since the daemon has no profiling flag.
//
//	profile -socket PATH -ring PATH -expect N -cpuprofile FILE
//	        [-ring-size BYTES] [-ready FILE] [-timeout D]
//
// It wires the same pieces the daemon's Run does, with the daemon's
// defaults: dgram.Listen (SO_PASSCRED, 8 MiB SO_RCVBUF), shmring.OpenWriter
// (a fresh ring of -ring-size bytes), and ingestloop.New with batch 64 and a
// 256 KiB message limit; it then runs Ingester.Run with the profiler on until
// the ring's head shows N stored datagrams (polled every millisecond), and stops it as SIGTERM stops
// the daemon (cancelling Run's context). Send the datagrams with loadgen.
// It writes "ready" to the -ready file once the socket is bound, and gives
// up (exit 1) after -timeout in all.
//
// It prints one line of JSON with the ingester's counters; inspect the
// profile with go tool pprof -top BINARY FILE.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/collectord/collectord/internal/dgram"
	"github.com/collectord/collectord/internal/ingestloop"
	"github.com/collectord/collectord/pkg/shmring"
)

type result struct {
	Stored    uint64  `json:"stored"`
	Batches   uint64  `json:"batches"` // ring commits, one per recvmmsg call
	PerBatch  float64 `json:"per_batch"`
	Elapsed   float64 `json:"elapsed"` // seconds from start to the last datagram stored
	Truncated uint64  `json:"truncated"`
	NoCreds   uint64  `json:"no_creds"`
}

func main() {
	socket := flag.String("socket", "", "datagram socket `path` to bind (required)")
	ringPath := flag.String("ring", "", "ring file `path` to create (required; must not exist)")
	ringSize := flag.Uint64("ring-size", 256<<20, "ring data size in `bytes` (power of two)")
	expect := flag.Uint64("expect", 0, "stop after this many datagrams are stored (required)")
	cpuprofile := flag.String("cpuprofile", "", "write the CPU profile to `file` (required)")
	ready := flag.String("ready", "", "`file` to write \"ready\" to once the socket is bound")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	if flag.NArg() > 0 || *socket == "" || *ringPath == "" || *expect == 0 || *cpuprofile == "" {
		fmt.Fprintln(os.Stderr, "profile: -socket, -ring, -expect and -cpuprofile are required")
		os.Exit(2)
	}
	res, err := run(*socket, *ringPath, *ringSize, *expect, *cpuprofile, *ready, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func run(socket, ringPath string, ringSize, expect uint64, cpuprofile, ready string, timeout time.Duration) (result, error) {
	if _, err := os.Stat(ringPath); err == nil {
		return result{}, fmt.Errorf("ring %s exists: give a fresh path", ringPath)
	}
	w, err := shmring.OpenWriter(ringPath, shmring.Options{Size: ringSize})
	if err != nil {
		return result{}, err
	}
	defer w.Close()
	r, err := shmring.OpenReader(ringPath)
	if err != nil {
		return result{}, err
	}
	defer r.Close()
	conn, err := dgram.Listen(socket, dgram.ListenOptions{})
	if err != nil {
		return result{}, err
	}
	defer os.Remove(socket)
	defer conn.Close()
	in, err := ingestloop.New(conn, w, ingestloop.Options{BatchSize: 64, MaxMessage: min(256<<10, int(ringSize)/8-1024)})
	if err != nil {
		return result{}, err
	}
	f, err := os.Create(cpuprofile)
	if err != nil {
		return result{}, err
	}
	defer f.Close()
	if ready != "" {
		if err := os.WriteFile(ready, []byte("ready\n"), 0o644); err != nil {
			return result{}, err
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if err := pprof.StartCPUProfile(f); err != nil {
		return result{}, err
	}
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- in.Run(runCtx) }()
	// Poll the head rather than sleep on the futex: a waiter would be woken
	// by every batch's publish and add its own cost to the profile (in the
	// benchmark nobody waits on the ring while the senders run).
	head0 := r.Head()
	werr := waitHead(ctx, r, head0+expect)
	elapsed := time.Since(start)
	stop()
	rerr := <-done
	pprof.StopCPUProfile()
	if werr != nil {
		return result{}, fmt.Errorf("wait for %d datagrams (stored %d): %w", expect, r.Head()-head0, werr)
	}
	if rerr != nil && !errors.Is(rerr, context.Canceled) {
		return result{}, rerr
	}
	s := in.Stats()
	res := result{Batches: s.Batches, Elapsed: elapsed.Seconds(),
		Truncated: s.Reasons[ingestloop.ReasonTruncated], NoCreds: s.Reasons[ingestloop.ReasonNoCredentials]}
	for _, n := range s.Datagrams {
		res.Stored += n
	}
	if res.Batches > 0 {
		res.PerBatch = float64(res.Stored) / float64(res.Batches)
	}
	return res, nil
}

// waitHead polls r every millisecond until its head reaches head or ctx ends.
func waitHead(ctx context.Context, r *shmring.Reader, head uint64) error {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for r.Head() < head {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}
