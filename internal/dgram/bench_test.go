//go:build linux

package dgram

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkReceive measures ingest throughput: sender goroutines blast
// 100-byte datagrams through blocking sockets (as separate client processes
// would), and one Receiver counts them. One op is one datagram. The batch
// a Receive can return is capped by net.unix.max_dgram_qlen+1 (see
// MaxDgramQlen), so run it also with the sysctl raised, for example in a
// private network namespace:
//
//	unshare -n sh -c 'echo 512 >/proc/sys/net/unix/max_dgram_qlen &&
//	  go test -run=^$ -bench=Receive ./internal/dgram/'
func BenchmarkReceive(b *testing.B) {
	for _, batch := range []int{1, 64} {
		for _, senders := range []int{1, 4} {
			b.Run(fmt.Sprintf("batch=%d/senders=%d", batch, senders), func(b *testing.B) {
				benchmarkReceive(b, batch, senders)
			})
		}
	}
}

func benchmarkReceive(b *testing.B, batch, senders int) {
	path := filepath.Join(b.TempDir(), "s")
	conn, err := Listen(path, ListenOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	r, err := NewReceiver(conn, ReceiverOptions{BatchSize: batch})
	if err != nil {
		b.Fatal(err)
	}
	fds := make([]int, senders)
	for i := range fds {
		fds[i] = rawDial(b, path)
	}
	msg := make([]byte, 100)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()

	// The senders send b.N datagrams in all and the receiver takes exactly
	// that many. If Receive fails, closing conn wakes any sender blocked on
	// the full queue (with ECONNREFUSED) before we wait for them.
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for i, fd := range fds {
		n := b.N / senders
		if i == 0 {
			n += b.N % senders
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if _, err := unix.Write(fd, msg); err != nil {
					errs <- err
					return
				}
			}
		}()
	}

	got, calls := 0, 0
	for got < b.N {
		msgs, err := r.Receive()
		if err != nil {
			conn.Close()
			wg.Wait()
			b.Fatal(err)
		}
		got += len(msgs)
		calls++
	}
	b.StopTimer()
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("sender: %v", err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(calls), "msgs/batch")
}

// BenchmarkReceiveDrain measures only the receiver's cost per datagram: with
// the timer stopped a sender fills the queue with min(64, max_dgram_qlen+1)
// 100-byte datagrams, then the timer runs while Receive drains them. One op
// is one datagram. With the kernel default max_dgram_qlen of 10 a fill is
// about 11 datagrams; raise the sysctl (see BenchmarkReceive) to see full batches.
func BenchmarkReceiveDrain(b *testing.B) {
	qlen, err := MaxDgramQlen()
	if err != nil {
		b.Fatal(err)
	}
	fill := min(64, qlen+1)
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d/fill=%d", batch, fill), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "s")
			conn, err := Listen(path, ListenOptions{})
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			r, err := NewReceiver(conn, ReceiverOptions{BatchSize: batch})
			if err != nil {
				b.Fatal(err)
			}
			fd := rawDial(b, path)
			// Room in the sender's buffer for a whole fill.
			if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 1<<20); err != nil {
				unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
			}
			if err := unix.SetNonblock(fd, true); err != nil {
				b.Fatal(err)
			}
			msg := make([]byte, 100)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.ResetTimer()
			got, calls := 0, 0
			for got < b.N {
				b.StopTimer()
				queued := 0
				for ; queued < min(fill, b.N-got); queued++ {
					if _, err := unix.Write(fd, msg); err != nil {
						b.Fatalf("fill datagram %d: %v", queued, err)
					}
				}
				b.StartTimer()
				for queued > 0 {
					msgs, err := r.Receive()
					if err != nil {
						b.Fatal(err)
					}
					queued -= len(msgs)
					got += len(msgs)
					calls++
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/float64(calls), "msgs/batch")
		})
	}
}
