//go:build linux

package query

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/collectord/collectord/pkg/shmring"
)

// ownedBy reports whether entryFor(seq) has kernel credentials with uid.
func ownedBy(uid uint32) func(seq uint64) bool {
	return func(s uint64) bool { return s%2 == 0 && uint32(s%3) == uid }
}

// runOwn runs req with RunAs(OwnRecords(uid)) and returns the records it
// delivered, the End, and the losses reported.
func runOwn(t *testing.T, r *shmring.Reader, uid uint32, req Request) ([]uint64, End) {
	t.Helper()
	c := newCollector(t)
	end, err := RunAs(context.Background(), r, OwnRecords(uid), req, c.handler())
	if err != nil {
		t.Fatalf("RunAs(%s): %v", marshalJSON(req), err)
	}
	seqs, _, _ := c.snapshot()
	if c.losses != 0 {
		t.Fatalf("RunAs(%s): %d losses", marshalJSON(req), c.losses)
	}
	return seqs, end
}

// TestRunOwnLatest: the latest N of a user's records, with every filter,
// are the latest N of the records that user sent that the filter keeps,
// as if nobody else's existed.
func TestRunOwnLatest(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	tr.write(3000, 64)
	oldest, head := tr.held()
	for _, tc := range filterCases {
		for _, n := range []int64{0, 1, 7, 100, 100_000} {
			t.Run(fmt.Sprintf("%s/n=%d", tc.name, n), func(t *testing.T) {
				mine := ownedBy(1)
				got, end := runOwn(t, tr.r, 1, Request{ID: 3, N: new(n), Filter: tc.filter})
				w := lastN(want(oldest, head, func(s uint64) bool { return mine(s) && tc.keep(s) }), int(n))
				if !slices.Equal(got, w) {
					t.Fatalf("got %v, want %v", got, w)
				}
				if want := (End{ID: 3, Cursor: head - 1, Reason: ReasonDone}); end != want {
					t.Fatalf("end %+v, want %+v", end, want)
				}
			})
		}
	}
	// Another user's uid in the filter narrows the view to nothing.
	if got, _ := runOwn(t, tr.r, 1, Request{N: new(int64(100)), Filter: Filter{UID: new(uint32(0))}}); len(got) != 0 {
		t.Errorf("uid 1 asking for uid 0's records got %v", got)
	}
}

// TestRunOwnCursors: chained after queries deliver each of the user's
// records exactly once, and nothing else.
func TestRunOwnCursors(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(1000, 10)
	var all []uint64
	cursor := uint64(0)
	for {
		got, end := runOwn(t, tr.r, 2, Request{After: new(cursor), N: new(int64(13))})
		all = append(all, got...)
		if len(got) < 13 {
			break
		}
		if end.Cursor != got[len(got)-1] {
			t.Fatalf("cursor %d after a full response ending at %d", end.Cursor, got[len(got)-1])
		}
		cursor = end.Cursor
	}
	if w := want(1, 1001, ownedBy(2)); !slices.Equal(all, w) {
		t.Fatalf("got %v, want %v", all, w)
	}
}

// TestRunOwnLapped: a follow of one user's records overtaken by the writer
// is told where it continues but not how many records were lost (lost is
// 0); the server's own count (overwritten) still gets the true number.
func TestRunOwnLapped(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	first := tr.write(50, 10)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCollector(t)
	h := c.handler()
	rec := h.Record
	var final, overwritten uint64
	h.overwritten = func(n uint64) { overwritten += n }
	mine := ownedBy(1)
	h.Record = func(r Record) error {
		if err := rec(r); err != nil {
			return err
		}
		if !mine(r.Seq) {
			return fmt.Errorf("record %d is not uid 1's", r.Seq)
		}
		switch {
		case final == 0 && r.Seq+6 > first:
			final = tr.write(5000, 100) // laps the ring many times
			for !mine(final) {
				final = tr.write(1, 1)
			}
		case r.Seq == final:
			cancel()
		}
		return nil
	}
	end, err := RunAs(ctx, tr.r, OwnRecords(1), Request{After: new(uint64(0)), Follow: true}, h)
	if err != nil {
		t.Fatal(err)
	}
	seqs, lost, _ := c.snapshot()
	if c.losses == 0 || lost != 0 {
		t.Fatalf("%d losses reported, counting %d records; want some, counting none", c.losses, lost)
	}
	if overwritten == 0 {
		t.Fatal("overwritten did not get the true count")
	}
	oldest, _ := tr.held()
	if w := append(want(1, first+1, mine), want(oldest, final+1, mine)...); !slices.Equal(seqs, w) {
		t.Fatalf("delivered %v\nwant %v", seqs, w)
	}
	if end.Reason != ReasonCancelled || end.Cursor != final {
		t.Fatalf("end %+v, want cancelled at %d", end, final)
	}
}
