package shmring

import (
	"context"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

// minorFaults reads this process's minor page faults from /proc.
func minorFaults(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, err := strconv.ParseUint(f[10-3], 10, 64) // minflt is field 10
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// After Populate, writing a whole lap of a fresh ring on tmpfs (where the
// daemon keeps it, in /run) takes (almost) no page faults; without it,
// about one per page.
func TestPopulate(t *testing.T) {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		t.Skip("no /dev/shm: the test needs a tmpfs")
	}
	t.Setenv("TMPDIR", "/dev/shm") // for t.TempDir
	const size = 4 << 20
	payload := make([]byte, 1000)
	lap := func(w *Writer) uint64 {
		before := minorFaults(t)
		for range size / 1024 {
			if _, err := w.Add(1, payload); err != nil {
				t.Fatal(err)
			}
		}
		w.Publish()
		return minorFaults(t) - before
	}
	plain, _ := newWriterForTest(t, Options{Size: size})
	unpopulated := lap(plain)
	// Faults are counted for the whole process, where the runtime (and the
	// race detector) may take some of its own meanwhile: the least of three
	// tries is the ring's.
	populated := uint64(math.MaxUint64)
	for range 3 {
		w, _ := newWriterForTest(t, Options{Size: size})
		if err := w.Populate(context.Background()); err != nil {
			t.Fatal(err)
		}
		populated = min(populated, lap(w))
	}
	t.Logf("faults for a lap of a %d-byte ring: %d without Populate, %d with", size, unpopulated, populated)
	if pages := uint64(size / os.Getpagesize()); unpopulated < pages/2 {
		t.Skipf("only %d faults for %d pages without Populate: this filesystem maps pages some other way", unpopulated, pages)
	}
	if populated > unpopulated/10 {
		t.Errorf("%d faults after Populate, want a tenth or less of the %d without", populated, unpopulated)
	}
	// A cancelled Populate stops.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w3, _ := newWriterForTest(t, Options{Size: size})
	if err := w3.Populate(ctx); err != context.Canceled {
		t.Errorf("cancelled Populate: %v, want context.Canceled", err)
	}
}

// Populate changes no byte of the ring, even while the writer wraps it
// round and round: every record it has written reads back whole, with its
// CRC checked, and the sequence has no hole.
func TestPopulateChangesNothing(t *testing.T) {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		t.Skip("no /dev/shm: the test needs a tmpfs")
	}
	t.Setenv("TMPDIR", "/dev/shm") // Populate writes its pages only on tmpfs
	const spread = 3000
	w, path := newWriterForTest(t, Options{Size: MinSize})
	appendN(t, w, 500, spread)
	done := make(chan error, 1)
	for lap := 0; lap < 20; lap++ {
		go func() { done <- w.Populate(context.Background()) }()
		appendN(t, w, 200, spread) // concurrently with Populate
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	r := newReaderForTest(t, path)
	seqs, lost := readAll(t, r.Cursor(r.Stats().Oldest), spread)
	if lost != 0 || len(seqs) == 0 || seqs[len(seqs)-1] != r.Head()-1 {
		t.Fatalf("read %d records ending at %v, lost %d; want every live record up to head %d", len(seqs), seqs[len(seqs)-1:], lost, r.Head())
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seq %d follows %d", seqs[i], seqs[i-1])
		}
	}
}
