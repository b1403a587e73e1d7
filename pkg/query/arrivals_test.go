//go:build linux

package query

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// waitResult is what Arrivals.wait returned.
type waitResult struct {
	ok  bool
	err error
}

// startWait runs a.wait in a goroutine.
func startWait(ctx context.Context, a *Arrivals, uid uint32, pos uint64) <-chan waitResult {
	ch := make(chan waitResult, 1)
	go func() {
		ok, err := a.wait(ctx, uid, pos)
		ch <- waitResult{ok, err}
	}()
	return ch
}

// expectBlocked fails if ch delivers within a short while.
func expectBlocked(t *testing.T, ch <-chan waitResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: wait returned %+v, want it still waiting", what, r)
	case <-time.After(20 * time.Millisecond):
	}
}

// expectResult fails unless ch delivers want soon.
func expectResult(t *testing.T, ch <-chan waitResult, want waitResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		if r.ok != want.ok || !errors.Is(r.err, want.err) {
			t.Fatalf("%s: wait returned %+v, want %+v", what, r, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: wait still waiting, want %+v", what, want)
	}
}

// TestArrivalsWait: a wait for one user's records sleeps through other
// users' batches, wakes for the user's own, and gives up (false) whenever
// it cannot tell: before Start, for positions before Start's head, after
// Stop, and for users beyond MaxArrivalUIDs.
func TestArrivalsWait(t *testing.T) {
	ctx := context.Background()
	a := NewArrivals()
	expectResult(t, startWait(ctx, a, 1, 10), waitResult{}, "before Start")

	a.Start(10)
	expectResult(t, startWait(ctx, a, 1, 5), waitResult{}, "a position before Start's head")
	w := startWait(ctx, a, 1, 10)
	expectBlocked(t, w, "no records yet")
	a.Published([]uint32{2, 3, 2}, 11)
	expectBlocked(t, w, "other users' records")
	a.Published([]uint32{2, 1}, 13)
	expectResult(t, w, waitResult{ok: true}, "the user's records")
	expectResult(t, startWait(ctx, a, 1, 12), waitResult{ok: true}, "a position before the user's last batch")

	w = startWait(ctx, a, 1, 13)
	expectBlocked(t, w, "everything read")
	a.Stop()
	expectResult(t, w, waitResult{}, "Stop")
	expectResult(t, startWait(ctx, a, 1, 13), waitResult{}, "after Stop")

	a.Start(20)
	cctx, cancel := context.WithCancel(ctx)
	w = startWait(cctx, a, 1, 20)
	expectBlocked(t, w, "restarted, nothing new")
	cancel()
	expectResult(t, w, waitResult{err: context.Canceled}, "cancelled")

	uids := make([]uint32, MaxArrivalUIDs)
	for i := range uids {
		uids[i] = uint32(100 + i)
	}
	a.Published(uids, 21)
	expectResult(t, startWait(ctx, a, 7, 21), waitResult{ok: false}, "a user beyond MaxArrivalUIDs")
	expectResult(t, startWait(ctx, a, 100, 20), waitResult{ok: true}, "a tracked user")
	w = startWait(ctx, a, 1, 21)
	expectBlocked(t, w, "a user tracked before the table filled")
	a.Published([]uint32{1}, 22)
	expectResult(t, w, waitResult{ok: true}, "a user tracked before the table filled")
}

// TestOwnFollowWithArrivals: a follow of one user's records, told by
// Arrivals when theirs arrive, delivers exactly that user's records, in
// order: while the writer reports its batches, after it stops reporting
// (another process writing), and after it starts again.
func TestOwnFollowWithArrivals(t *testing.T) {
	tr := newRingForTest(t, 16<<20)
	a := NewArrivals()
	a.Start(tr.w.Stats().Head)
	// write adds n records in batches of 10, reporting each batch's
	// senders if report.
	write := func(n int, report bool) uint64 {
		var last uint64
		for range n / 10 {
			from := tr.w.Stats().Head
			last = tr.write(10, 10)
			var uids []uint32
			for seq := from; seq <= last; seq++ {
				if seq%2 == 0 { // entryFor gives even records credentials
					uids = append(uids, uint32(seq%3))
				}
			}
			if report {
				a.Published(uids, last+1)
			}
		}
		return last
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCollector(t)
	done := make(chan error, 1)
	go func() {
		_, err := runAs(ctx, tr.r, OwnRecords(1), a, Request{After: new(uint64(0)), Follow: true}, c.handler())
		done <- err
	}()
	mine := ownedBy(1)
	caughtUp := func(last uint64) {
		t.Helper()
		for !mine(last) {
			last--
		}
		c.waitUntil(t, "every record of uid 1", func(seqs []uint64, _ uint64, _ int) bool { return len(seqs) > 0 && seqs[len(seqs)-1] == last })
	}
	last := write(3000, true)
	caughtUp(last)
	a.Stop()
	last = write(3000, false)
	caughtUp(last)
	a.Start(tr.w.Stats().Head)
	last = write(3000, true)
	caughtUp(last)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seqs, lost, _ := c.snapshot()
	if w := want(1, last+1, mine); lost != 0 || !slices.Equal(seqs, w) {
		t.Fatalf("delivered %d records (%d lost), want %d: uid 1's, in order", len(seqs), lost, len(w))
	}
}
