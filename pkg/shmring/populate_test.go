package shmring

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// mappedKiB reads from /proc/self/smaps how much of the mapping that starts
// at b's first byte this process's page tables map (its Rss).
func mappedKiB(t *testing.T, b []byte) uint64 {
	t.Helper()
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	start := strconv.FormatUint(uint64(uintptr(unsafe.Pointer(&b[0]))), 16) + "-"
	in := false
	for line := range strings.Lines(string(smaps)) {
		if f := strings.Fields(line); len(f) > 0 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = strings.HasPrefix(f[0], start)
			continue
		}
		if rss, ok := strings.CutPrefix(line, "Rss:"); ok && in {
			n, err := strconv.ParseUint(strings.Fields(rss)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no mapping at %s in /proc/self/smaps", start)
	return 0
}

// After Populate, this process's page tables map the whole ring (on
// tmpfs, where the daemon keeps it, in /run), so that the writer's first
// lap takes no page faults; a fresh ring's mapping maps almost nothing.
// (Counting the faults of a lap instead would count the whole process's,
// which the race detector takes too.)
func TestPopulate(t *testing.T) {
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		t.Skip("no /dev/shm: the test needs a tmpfs")
	}
	t.Setenv("TMPDIR", "/dev/shm") // for t.TempDir
	const size = 4 << 20
	w, _ := newWriterForTest(t, Options{Size: size})
	total := uint64(len(w.mem)) / 1024
	before := mappedKiB(t, w.mem)
	if err := w.Populate(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := mappedKiB(t, w.mem)
	t.Logf("a %d KiB ring mapping: %d KiB mapped fresh, %d KiB after Populate", total, before, after)
	if before > total/2 {
		t.Skipf("%d of %d KiB mapped before Populate: this filesystem maps pages some other way", before, total)
	}
	if after != total {
		t.Errorf("%d of %d KiB mapped after Populate, want all", after, total)
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
