//go:build linux

// Command baseline is collectord's own socket and receive loop doing
// nothing with the datagrams but counting them. It is not the yardstick
// (bench/ingest/ceiling is: it shares no code with the daemon); set beside
// the ceiling (bench/ingest/run.sh -l) it shows what the receive loop
// itself costs, before any parsing or storing.
//
//	baseline -socket PATH -expect N [-timeout D] [-ready FILE] [-cpuprofile FILE]
//
// It binds a UNIX datagram socket at PATH with internal/dgram.Listen
// (SO_PASSCRED, the daemon's default SO_RCVBUF), reads it with a
// dgram.Receiver taking up to 64 datagrams per recvmmsg(2) call (the
// daemon's batch size and per-datagram buffer size), checks that every
// datagram carries kernel credentials, and exits once it has received N
// datagrams. It writes "ready" to the -ready file once the socket is bound.
// It gives up (exit 1) if no datagram arrives for -timeout (checked once a
// second, outside the receive loop), so a run always ends.
//
// It prints one line of JSON (see result) on stdout. To compare with a
// sender's clock, it reports the wall-clock time of the last receive.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/dgram"
)

// batchSize is the daemon's default recvmmsg batch.
const batchSize = 64

// result is what baseline prints. Rate is datagrams per second.
type result struct {
	Received int     `json:"received"`
	Bytes    int64   `json:"bytes"`
	NoCreds  int     `json:"no_creds"`  // datagrams without SCM_CREDENTIALS
	Batches  int     `json:"batches"`   // recvmmsg calls that returned datagrams
	MaxBatch int     `json:"max_batch"` // most datagrams one call returned
	Elapsed  float64 `json:"elapsed"`   // seconds from the first receive to the last
	Rate     float64 `json:"rate"`      // Received / Elapsed
	// LastUnixNano is the wall-clock time the last datagram was received.
	LastUnixNano int64 `json:"last_unix_nano"`
	// CPU is the user plus system CPU time, in seconds, this process used
	// (startup included, which is negligible).
	CPU float64 `json:"cpu"`
}

func main() {
	socket := flag.String("socket", "", "datagram socket `path` to bind (required)")
	expect := flag.Int("expect", 0, "exit after receiving this many datagrams (required)")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up when no datagram arrives for this long")
	ready := flag.String("ready", "", "`file` to write \"ready\" to once the socket is bound")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the receive loop to `file`")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected argument %q", flag.Arg(0))
	}
	if *socket == "" || *expect < 1 || *timeout <= 0 {
		fatalf("-socket and a positive -expect and -timeout are required")
	}
	res, err := run(*socket, *expect, *timeout, *ready, *cpuprofile)
	if err != nil {
		fatalf("%v", err)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.NoCreds > 0 {
		fatalf("%d datagrams arrived without credentials", res.NoCreds)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "baseline: "+format+"\n", args...)
	os.Exit(1)
}

func run(socket string, expect int, timeout time.Duration, ready, cpuprofile string) (result, error) {
	conn, err := dgram.Listen(socket, dgram.ListenOptions{})
	if err != nil {
		return result{}, err
	}
	defer os.Remove(socket)
	defer conn.Close()
	rx, err := dgram.NewReceiver(conn, dgram.ReceiverOptions{BatchSize: batchSize})
	if err != nil {
		return result{}, err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return result{}, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, err
		}
		defer pprof.StopCPUProfile()
	}
	if ready != "" {
		if err := os.WriteFile(ready, []byte("ready\n"), 0o644); err != nil {
			return result{}, err
		}
	}

	// A watchdog, not a per-batch read deadline, bounds the run: the hot
	// loop stays exactly the daemon's (Receive, no timers), and a stalled
	// run is cut off by setting the deadline to now.
	var progress atomic.Int64
	stalled := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		seen, since := int64(-1), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				if p := progress.Load(); p != seen {
					seen, since = p, now
				} else if now.Sub(since) >= timeout {
					close(stalled)
					conn.SetReadDeadline(now)
					return
				}
			}
		}
	}()

	var res result
	var first, last time.Time
	for res.Received < expect {
		msgs, err := rx.Receive()
		if err != nil {
			select {
			case <-stalled:
				return res, fmt.Errorf("received %d of %d datagrams, then nothing for %v", res.Received, expect, timeout)
			default:
			}
			return res, err
		}
		last = time.Now()
		if first.IsZero() {
			first = last
		}
		for i := range msgs {
			m := &msgs[i]
			if !m.Creds.OK {
				res.NoCreds++
			}
			res.Bytes += int64(m.Size)
			m.CloseFDs()
		}
		res.Received += len(msgs)
		res.Batches++
		res.MaxBatch = max(res.MaxBatch, len(msgs))
		progress.Store(int64(res.Received))
	}
	res.LastUnixNano = last.UnixNano()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err == nil {
		res.CPU = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	res.Elapsed = last.Sub(first).Seconds()
	if res.Elapsed > 0 {
		res.Rate = float64(res.Received) / res.Elapsed
	}
	return res, nil
}
