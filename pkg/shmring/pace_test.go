//go:build linux

package shmring

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWaitPacedQuietRing: on a ring written rarely, WaitPaced wakes as Wait
// does, as soon as a record is published, and honours ctx.
func TestWaitPacedQuietRing(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	r := newReaderForTest(t, path)
	var p Pace
	for i := range 3 {
		seq := r.Head()
		done := make(chan error)
		go func() { done <- r.WaitPaced(context.Background(), seq, &p) }()
		select {
		case err := <-done:
			t.Fatalf("round %d: WaitPaced returned %v before anything was published", i, err)
		case <-time.After(2 * PaceGap):
		}
		w.Append(0, []byte("wake"))
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: WaitPaced did not wake for a published record", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := r.WaitPaced(ctx, r.Head(), &p); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitPaced with expiring ctx = %v", err)
	}
}

// TestWaitPacedSharesTicks: followers of a ring written as fast as the
// writer can each wake at most once per tick, ticks are at least PaceBusy
// apart, and every follower still sees every record.
func TestWaitPacedSharesTicks(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: 4 << 20})
	r := newReaderForTest(t, path)
	const followers = 8
	const records = 20000
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wakes [followers]atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, followers)
	for i := range followers {
		wg.Go(func() {
			var p Pace
			var ticks []uint64
			next := uint64(FirstSeq)
			for next < FirstSeq+records {
				if err := r.WaitPaced(ctx, next, &p); err != nil {
					errs <- err
					return
				}
				if len(ticks) > 0 && ticks[len(ticks)-1] == p.tick {
					errs <- errors.New("woke twice in one tick")
					return
				}
				ticks = append(ticks, p.tick)
				wakes[i].Add(1)
				next = r.Head()
			}
		})
	}
	start := time.Now()
	for range records {
		w.Append(0, []byte("busy"))
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	most := int64(elapsed/PaceBusy) + 2
	for i := range wakes {
		if n := wakes[i].Load(); n > most {
			t.Errorf("follower %d woke %d times in %v, want at most %d (one per PaceBusy)", i, n, elapsed, most)
		}
	}
	t.Logf("%d records in %v; wake-ups per follower: %d..%d", records, elapsed, wakes[0].Load(), wakes[followers-1].Load())
}

// TestCloseUnblocksWaitPaced: Close wakes followers waiting for a tick and
// those sleeping on the futex, with ErrClosed.
func TestCloseUnblocksWaitPaced(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Append(0, []byte("one"))
	var p Pace
	if err := r.WaitPaced(context.Background(), FirstSeq, &p); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	// One waits for the next tick (a record is there, but it has had this
	// tick); the other for a record.
	go func() { done <- r.WaitPaced(context.Background(), FirstSeq, &p) }()
	go func() {
		var q Pace
		done <- r.WaitPaced(context.Background(), r.Head(), &q)
	}()
	time.Sleep(10 * time.Millisecond)
	r.Close()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitPaced after Close = %v, want ErrClosed or nil", err)
		}
	}
}
