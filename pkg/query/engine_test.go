//go:build linux

package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/shmring"
)

// runLocal runs req with Run and returns the records it delivered.
func runLocal(t *testing.T, r *shmring.Reader, req Request) ([]uint64, End) {
	t.Helper()
	c := newCollector(t)
	end, err := Run(context.Background(), r, req, c.handler())
	if err != nil {
		t.Fatalf("Run(%s): %v", marshalJSON(req), err)
	}
	seqs, lost, _ := c.snapshot()
	if lost != 0 {
		t.Fatalf("Run(%s): %d lost", marshalJSON(req), lost)
	}
	return seqs, end
}

func TestRunLatest(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize) // small: the ring has wrapped
	tr.write(3000, 64)
	oldest, head := tr.held()
	if oldest == shmring.FirstSeq {
		t.Fatal("the ring has not wrapped")
	}
	for _, tc := range filterCases {
		for _, n := range []int64{-1, 0, 1, 7, 100, 100_000} {
			t.Run(fmt.Sprintf("%s/n=%d", tc.name, n), func(t *testing.T) {
				req := Request{ID: 9, Filter: tc.filter}
				wantN := DefaultN
				if n >= 0 {
					req.N = new(n)
					wantN = int(n)
				}
				got, end := runLocal(t, tr.r, req)
				if w := lastN(want(oldest, head, tc.keep), wantN); !slices.Equal(got, w) {
					t.Fatalf("got %v, want %v", got, w)
				}
				if want := (End{ID: 9, Cursor: head - 1, Reason: ReasonDone}); end != want {
					t.Fatalf("end %+v, want %+v", end, want)
				}
			})
		}
	}
}

func TestRunEmptyRing(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	got, end := runLocal(t, tr.r, Request{Filter: Filter{Tag: "sshd"}})
	if len(got) != 0 || end != (End{Cursor: 0, Reason: ReasonDone}) {
		t.Fatalf("got %v, %+v", got, end)
	}
	got, end = runLocal(t, tr.r, Request{After: new(uint64(0))})
	if len(got) != 0 || end != (End{Cursor: 0, Reason: ReasonDone}) {
		t.Fatalf("got %v, %+v", got, end)
	}
}

func TestRunAfterChain(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(500, 10)
	var all []uint64
	cursor := uint64(0)
	for round := range 40 {
		if round == 20 {
			tr.write(300, 7) // more records arrive between queries
		}
		got, end := runLocal(t, tr.r, Request{After: new(cursor), N: new(int64(37))})
		all = append(all, got...)
		if end.Reason != ReasonDone || end.Cursor < cursor {
			t.Fatalf("round %d: end %+v after cursor %d", round, end, cursor)
		}
		cursor = end.Cursor
	}
	if w := want(1, 801, nil); !slices.Equal(all, w) {
		t.Fatalf("chained after queries delivered %d records, ending %v; want %d", len(all), lastN(all, 5), len(w))
	}
}

func TestRunAfterFiltered(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(1000, 10)
	for _, tc := range filterCases {
		t.Run(tc.name, func(t *testing.T) {
			var all []uint64
			cursor := uint64(0)
			for {
				got, end := runLocal(t, tr.r, Request{After: new(cursor), N: new(int64(13)), Filter: tc.filter})
				all = append(all, got...)
				if len(got) < 13 {
					if end.Cursor != 1000 {
						t.Fatalf("final cursor %d, want 1000", end.Cursor)
					}
					break
				}
				if end.Cursor != got[len(got)-1] {
					t.Fatalf("cursor %d after a full response ending at %d", end.Cursor, got[len(got)-1])
				}
				cursor = end.Cursor
			}
			if w := want(1, 1001, tc.keep); !slices.Equal(all, w) {
				t.Fatalf("got %v, want %v", all, w)
			}
		})
	}
}

// TestRunLapped has the writer overwrite the records a follow has not read
// yet, from inside the handler, and checks that the loss is reported
// exactly: every sequence number is either delivered or counted lost.
func TestRunLapped(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	first := tr.write(50, 10)
	var final uint64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newCollector(t)
	h := c.handler()
	rec := h.Record
	h.Record = func(r Record) error {
		if err := rec(r); err != nil {
			return err
		}
		switch r.Seq {
		case first:
			final = tr.write(5000, 100) // laps the ring many times
		case final:
			cancel()
		}
		return nil
	}
	end, err := Run(ctx, tr.r, Request{After: new(uint64(0)), Follow: true}, h)
	if err != nil {
		t.Fatal(err)
	}
	seqs, lost, _ := c.snapshot()
	if c.losses == 0 || lost == 0 {
		t.Fatal("no loss reported")
	}
	if got := uint64(len(seqs)) + lost; got != final {
		t.Fatalf("%d delivered + %d lost = %d, want %d written", len(seqs), lost, got, final)
	}
	if end.Reason != ReasonCancelled || end.Cursor != final {
		t.Fatalf("end %+v, want cancelled at %d", end, final)
	}
}

func TestRunCancelCause(t *testing.T) {
	for _, tc := range []struct {
		cause error
		want  Reason
	}{
		{ErrShutdown, ReasonShutdown},
		{fmt.Errorf("stopping: %w", ErrShutdown), ReasonShutdown},
		{errors.New("client went away"), ReasonCancelled},
		{nil, ReasonCancelled},
	} {
		tr := newRingForTest(t, 1<<20)
		tr.write(2000, 100)
		ctx, cancel := context.WithCancelCause(context.Background())
		c := newCollector(t)
		h := c.handler()
		rec := h.Record
		h.Record = func(r Record) error {
			if r.Seq == 700 {
				cancel(tc.cause)
			}
			return rec(r)
		}
		end, err := Run(ctx, tr.r, Request{N: new(int64(1500)), Follow: true}, h)
		cancel(nil)
		if err != nil {
			t.Fatal(err)
		}
		seqs, _, _ := c.snapshot()
		if end.Reason != tc.want || end.Cursor != seqs[len(seqs)-1] || end.Cursor < 700 {
			t.Fatalf("cause %v: end %+v after %d records (last %d)", tc.cause, end, len(seqs), seqs[len(seqs)-1])
		}
		// Resuming from the cursor delivers the rest exactly.
		rest, _ := runLocal(t, tr.r, Request{After: new(end.Cursor)})
		if all := append(seqs, rest...); !slices.Equal(all, want(501, 2001, nil)) {
			t.Fatalf("cause %v: %d records then %d on resume, want 501..2000", tc.cause, len(seqs), len(rest))
		}
	}
}

func TestRunPing(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pings := 0
	h := Handler{
		PingInterval: 10e6, // 10ms
		Ping: func() error {
			if pings++; pings == 3 {
				cancel()
			}
			return nil
		},
	}
	end, err := Run(ctx, tr.r, Request{Follow: true}, h)
	if err != nil || end.Reason != ReasonCancelled || pings != 3 {
		t.Fatalf("end %+v, %v after %d pings", end, err, pings)
	}
}

func TestRunHandlerError(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 100)
	boom := errors.New("boom")
	end, err := Run(context.Background(), tr.r, Request{N: new(int64(50))}, Handler{Record: func(r Record) error {
		if r.Seq == 60 {
			return boom
		}
		return nil
	}})
	if !errors.Is(err, boom) || end.Cursor != 59 {
		t.Fatalf("end %+v, err %v; want cursor 59 and boom", end, err)
	}
	_, err = Run(context.Background(), tr.r, Request{Filter: Filter{Grep: "("}}, Handler{})
	var re *RequestError
	if !errors.As(err, &re) || re.Field != "filter.grep" {
		t.Fatalf("bad grep: %v", err)
	}
}

// TestRunAllocations checks that Run's allocations do not grow with the
// number of records it reads.
func TestRunAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	tr := newRingForTest(t, 4<<20)
	tr.write(20000, 1000)
	for _, f := range []Filter{{}, {Grep: "fail(ed|ure)", Priority: new(6)}} {
		allocs := func(n int64) float64 {
			return testing.AllocsPerRun(5, func() {
				Run(context.Background(), tr.r, Request{N: new(n), Filter: f}, Handler{Record: func(Record) error { return nil }})
			})
		}
		small, large := allocs(100), allocs(15000)
		if large > small+2 {
			t.Errorf("filter %+v: %v allocations for 100 records, %v for 15000", f, small, large)
		}
	}
}

// TestFollowCoalescesWakeUps: while the writer publishes one record per
// batch as fast as it can, each of several follows of the ring wakes (and
// flushes) at most once per shmring.PaceBusy, and still delivers every
// record, in order.
func TestFollowCoalescesWakeUps(t *testing.T) {
	tr := newRingForTest(t, 16<<20)
	const batches, follows = 20000, 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := make([]*collector, follows)
	flushes := make([]atomic.Int64, follows)
	done := make(chan error, follows)
	for i := range cs {
		cs[i] = newCollector(t)
		h := cs[i].handler()
		h.Flush = func() error { flushes[i].Add(1); return nil }
		go func() {
			_, err := Run(ctx, tr.r, Request{After: new(uint64(0)), Follow: true}, h)
			done <- err
		}()
	}
	start := time.Now()
	var last uint64
	for range batches {
		last = tr.write(1, 1)
	}
	elapsed := time.Since(start)
	for _, c := range cs {
		c.waitUntil(t, "every record", func(seqs []uint64, _ uint64, _ int) bool { return len(seqs) > 0 && seqs[len(seqs)-1] == last })
	}
	waited := time.Since(start)
	cancel()
	for range cs {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// One flush per wake-up, and one before the first wait. Ticks are at
	// least shmring.PaceBusy apart (PaceGap while every follow keeps up;
	// sooner when a pass over what arrived takes longer, as under the race
	// detector on a loaded host), and a follow runs once per tick. Without
	// pacing it would wake for nearly every one of the batches.
	most := int64(waited/shmring.PaceBusy) + 2
	for i, c := range cs {
		seqs, lost, _ := c.snapshot()
		if lost != 0 || !slices.Equal(seqs, want(1, last+1, nil)) {
			t.Fatalf("follow %d: %d records delivered, %d lost; want 1..%d", i, len(seqs), lost, last)
		}
		if n := flushes[i].Load(); n > most {
			t.Errorf("follow %d: %d wake-ups in %v (%d batches published in %v), want at most %d: one per %v", i, n, waited, batches, elapsed, most, shmring.PaceBusy)
		}
		t.Logf("follow %d: %d batches in %v, all delivered after %v with %d wake-ups", i, batches, elapsed, waited, flushes[i].Load())
	}
}
