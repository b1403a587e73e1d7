//go:build linux

package shmring

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// payloadFor derives a payload from seq so every byte can be checked.
func payloadFor(seq uint64, n int) []byte {
	p := make([]byte, n)
	fillPayload(p, seq)
	return p
}

func fillPayload(p []byte, seq uint64) {
	for i := range p {
		p[i] = byte(seq*31 + uint64(i)*7)
	}
	if len(p) >= 8 {
		binary.LittleEndian.PutUint64(p, seq)
	}
}

// sizeFor gives each seq a different, reproducible length in [8, 8+spread).
func sizeFor(seq uint64, spread int) int { return 8 + int(seq*2654435761%uint64(spread)) }

func newWriterForTest(t *testing.T, opts Options) (*Writer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ring")
	w, err := OpenWriter(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path
}

func newReaderForTest(t *testing.T, path string) *Reader {
	t.Helper()
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// readAll drains a cursor, checking payloads, and returns the seqs read and
// the total reported lost.
func readAll(t *testing.T, c *Cursor, spread int) (seqs []uint64, lost uint64) {
	t.Helper()
	for {
		rec, l, err := c.Next()
		lost += l
		if errors.Is(err, ErrNoRecord) {
			return seqs, lost
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := payloadFor(rec.Seq, sizeFor(rec.Seq, spread)); !bytes.Equal(rec.Payload, want) {
			t.Fatalf("seq %d: payload %x, want %x", rec.Seq, rec.Payload, want)
		}
		if rec.Time != int64(rec.Seq)*1000 {
			t.Fatalf("seq %d: time %d", rec.Seq, rec.Time)
		}
		seqs = append(seqs, rec.Seq)
	}
}

func appendN(t *testing.T, w *Writer, n int, spread int) {
	t.Helper()
	for range n {
		seq := w.Stats().Head
		if _, err := w.Add(int64(seq)*1000, payloadFor(seq, sizeFor(seq, spread))); err != nil {
			t.Fatal(err)
		}
	}
	w.Publish()
}

func TestAppendReadLatest(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	r := newReaderForTest(t, path)
	if got := r.Head(); got != FirstSeq {
		t.Fatalf("empty ring head = %d, want %d", got, FirstSeq)
	}
	appendN(t, w, 100, 200)
	seqs, lost := readAll(t, r.Cursor(r.Latest(10)), 200)
	if lost != 0 || len(seqs) != 10 || seqs[0] != 91 || seqs[9] != 100 {
		t.Fatalf("latest 10: seqs %v lost %d", seqs, lost)
	}
	seqs, lost = readAll(t, r.Cursor(0), 200)
	if lost != 0 || len(seqs) != 100 || seqs[0] != FirstSeq {
		t.Fatalf("all: %d records from %v, lost %d", len(seqs), seqs[:1], lost)
	}
	if got := r.Latest(1000); got != FirstSeq {
		t.Fatalf("Latest(1000) = %d, want %d", got, FirstSeq)
	}
}

func TestUnpublishedInvisible(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	r := newReaderForTest(t, path)
	if _, err := w.Add(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Cursor(0).Next(); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("before Publish: err %v, want ErrNoRecord", err)
	}
	w.Publish()
	if rec, _, err := r.Cursor(0).Next(); err != nil || string(rec.Payload) != "x" {
		t.Fatalf("after Publish: %q, %v", rec.Payload, err)
	}
}

// TestWrapLostExact laps a cursor many times over with variable-size
// records and checks that reported losses equal the real gaps.
func TestWrapLostExact(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize, Records: 256})
	r := newReaderForTest(t, path)
	c := r.Cursor(0)
	expect := uint64(FirstSeq)
	for round := range 200 {
		appendN(t, w, 1+round*7%900, 700)
		// Read only part of what is there, so the next round laps the cursor.
		for range round % 50 {
			rec, lost, err := c.Next()
			if errors.Is(err, ErrNoRecord) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Seq != expect+lost {
				t.Fatalf("round %d: got seq %d after losing %d, expected %d", round, rec.Seq, lost, expect+lost)
			}
			if want := payloadFor(rec.Seq, sizeFor(rec.Seq, 700)); !bytes.Equal(rec.Payload, want) {
				t.Fatalf("seq %d: corrupt payload", rec.Seq)
			}
			expect = rec.Seq + 1
		}
	}
	st := r.Stats()
	if st.Head-st.Oldest > st.Records || st.BytesUsed > st.Size {
		t.Fatalf("stats out of bounds: %+v", st)
	}
	if c.Damaged() != 0 {
		t.Fatalf("damaged = %d", c.Damaged())
	}
}

func TestReopenContinues(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	w, err := OpenWriter(path, Options{Size: MinSize})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Recovered().Created {
		t.Fatal("first open did not report creation")
	}
	appendN(t, w, 50, 100)
	w.Add(0, []byte("unpublished but committed"))
	// Simulate a crash after the commit but before Publish: drop the
	// writer without Close (the flock goes with the file).
	// The mapping holds the file, and with it the lock, until it is unmapped.
	unix.Munmap(w.mem)
	w.f.Close()
	w.closed = true

	w, err = OpenWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	rs := w.Recovered()
	if rs.Created || rs.Records != 51 || rs.Damaged != 0 || rs.Unpublished != 1 {
		t.Fatalf("recovery: %+v", rs)
	}
	seq, err := w.Append(0, []byte("after"))
	if err != nil || seq != 52 {
		t.Fatalf("append after reopen: seq %d err %v, want 52", seq, err)
	}
}

func TestSecondWriterLocked(t *testing.T) {
	_, path := newWriterForTest(t, Options{Size: MinSize})
	_, err := OpenWriter(path, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("second writer: %v, want ErrLocked naming the pid", err)
	}
}

func TestGeometryMismatch(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	w.Close()
	_, err := OpenWriter(path, Options{Size: 2 * MinSize})
	if !errors.Is(err, ErrGeometry) || !strings.Contains(err.Error(), "64KiB") || !strings.Contains(err.Error(), "128KiB") {
		t.Fatalf("err = %v, want ErrGeometry naming both sizes", err)
	}
}

func TestBadSize(t *testing.T) {
	for _, size := range []uint64{1000, MinSize - 8, MinSize + 8} {
		_, err := OpenWriter(filepath.Join(t.TempDir(), "ring"), Options{Size: size})
		if err == nil || !strings.Contains(err.Error(), "power of two") {
			t.Errorf("size %d: err = %v", size, err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	w, _ := newWriterForTest(t, Options{Size: MinSize})
	if _, err := w.Append(0, make([]byte, w.MaxPayload()+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := w.Append(0, make([]byte, w.MaxPayload())); err != nil {
		t.Fatal(err)
	}
}

func TestNotARing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	if err := os.WriteFile(path, []byte(strings.Repeat("x", 8192)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, open := range []func() error{
		func() error { _, err := OpenReader(path); return err },
		func() error { _, err := OpenWriter(path, Options{}); return err },
	} {
		if err := open(); !errors.Is(err, ErrBadFile) {
			t.Fatalf("err = %v, want ErrBadFile", err)
		}
	}
	data, _ := os.ReadFile(path)
	if string(data) != strings.Repeat("x", 8192) {
		t.Fatal("a file that is not a ring was modified")
	}
}

func TestWaitWakes(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	r := newReaderForTest(t, path)
	done := make(chan error)
	go func() { done <- r.Wait(context.Background(), FirstSeq) }()
	select {
	case err := <-done:
		t.Fatalf("Wait returned %v before anything was published", err)
	case <-time.After(20 * time.Millisecond):
	}
	w.Append(0, []byte("wake"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if err := r.Wait(ctx, r.Head()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait with expired ctx = %v", err)
	}
}

func TestCloseUnblocksWait(t *testing.T) {
	_, path := newWriterForTest(t, Options{Size: MinSize})
	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- r.Wait(context.Background(), FirstSeq) }()
	r.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v, want ErrClosed", err)
	}
}

func TestAddAllocs(t *testing.T) {
	w, _ := newWriterForTest(t, Options{Size: 1 << 20})
	p := make([]byte, 100)
	allocs := testing.AllocsPerRun(1000, func() {
		for range 64 {
			w.Add(1, p)
		}
		w.Publish()
	})
	if allocs != 0 {
		t.Fatalf("Add+Publish allocates %.1f times per batch", allocs)
	}
}

// TestManyWaiters has several goroutines wait at once, some of them with
// contexts cancelled while they may be the futex leader; the others must
// still be woken by each publish.
func TestManyWaiters(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	r := newReaderForTest(t, path)
	type result struct {
		seq uint64
		err error
	}
	results := make(chan result)
	cancelled, cancel := context.WithCancel(context.Background())
	for i := range 16 {
		ctx := context.Background()
		if i%4 == 0 {
			ctx = cancelled
		}
		seq := uint64(FirstSeq + i%8)
		go func() { results <- result{seq, r.Wait(ctx, seq)} }()
	}
	cancel()
	for i := range 8 {
		w.Append(int64(i), []byte("x"))
	}
	var woken, stopped int
	for range 16 {
		res := <-results
		switch {
		case res.err == nil:
			woken++
		case errors.Is(res.err, context.Canceled):
			stopped++
		default:
			t.Fatalf("wait for %d: %v", res.seq, res.err)
		}
	}
	if woken < 12 || woken+stopped != 16 {
		t.Fatalf("woken %d, cancelled %d", woken, stopped)
	}
}

func TestCleanCloseSkipsVerification(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	appendN(t, w, 10, 100)
	w.Close()
	w, err := OpenWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if rs := w.Recovered(); !rs.Clean || rs.Records != 10 || time.Since(rs.ClosedAt) > time.Minute {
		t.Fatalf("reopen after Close: %+v, want clean with 10 records, closed just now", rs)
	}
}

// TestNextWhere: NextWhere returns exactly the records keep accepts, each
// validated, and passes over the others without counting them lost; while
// the writer laps it, what it returns is still only accepted records, whole.
func TestNextWhere(t *testing.T) {
	keep := func(p []byte) bool { return len(p) >= 8 && binary.LittleEndian.Uint64(p)%3 == 0 }
	w, path := newWriterForTest(t, Options{Size: MinSize, Records: 256})
	r := newReaderForTest(t, path)
	appendN(t, w, 40, 700) // fits: nothing lapped
	c := r.Cursor(0)
	var got []uint64
	for {
		rec, lost, err := c.NextWhere(keep)
		if errors.Is(err, ErrNoRecord) {
			break
		}
		if err != nil || lost != 0 {
			t.Fatalf("NextWhere: %v, lost %d", err, lost)
		}
		got = append(got, rec.Seq)
	}
	var want []uint64
	for seq := uint64(FirstSeq); seq < FirstSeq+40; seq++ {
		if seq%3 == 0 {
			want = append(want, seq)
		}
	}
	if !slices.Equal(got, want) || c.Pos() != FirstSeq+40 {
		t.Fatalf("NextWhere returned %v, ending at %d; want %v, ending at %d", got, c.Pos(), want, FirstSeq+40)
	}

	for round := range 200 {
		appendN(t, w, 1+round*7%900, 700)
		for range round % 50 {
			rec, _, err := c.NextWhere(keep)
			if errors.Is(err, ErrNoRecord) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if rec.Seq%3 != 0 || !bytes.Equal(rec.Payload, payloadFor(rec.Seq, sizeFor(rec.Seq, 700))) {
				t.Fatalf("round %d: NextWhere returned seq %d, which keep rejects or is damaged", round, rec.Seq)
			}
		}
	}
	if c.Damaged() != 0 {
		t.Fatalf("damaged = %d", c.Damaged())
	}
}
