//go:build linux

package shmring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The power-cut simulation. A real Durable writer runs a workload on a
// file, and the file's content is recorded at every sync point (after
// OpenWriter and after each Sync) and after every Publish in between. What
// a sync point made durable is what the one before had, plus the pages
// Sync writes (the same ranges, computed just before it; OpenWriter
// writes the whole file). A power cut after sync point k leaves on the
// disk what k made durable, except that any page that differs from it in
// any state up to the cut may hold that content instead (the kernel
// writes pages back whenever it likes), or, for a write the cut
// interrupted, a mix of two contents by 512-byte sector. The file is
// built that way, opened, and checked:
//
//   - every record that was published and intact at sync point k and not
//     yet overwritten by the ring at the cut reads back as written;
//   - every record a reader sees is one the writer wrote (none torn);
//   - the sequence continues right after the highest intact record (as
//     found by comparing the file's bytes with what was written, not by
//     the checksums recovery uses);
//   - the writer appends after it, and the records read back.
//
// The simulation does not depend on the filesystem: the post-crash files
// are built here, byte by byte.

// cutWrite is one record as a writer wrote it.
type cutWrite struct {
	life, size int // life: which writer (1, 2, ...) wrote it
}

func cutPayload(life int, seq uint64, n int) []byte {
	p := payloadFor(seq*16+uint64(life), n)
	if n >= 9 {
		p[8] = byte(life)
	}
	return p
}

func cutTime(life int, seq uint64) int64 { return int64(seq)*1000 + int64(life) }

// cutRecord is the bytes of a record in the data area.
func cutRecord(seq uint64, wr cutWrite) []byte {
	rec := make([]byte, recHeaderSize+wr.size)
	le := binary.LittleEndian
	le.PutUint32(rec[4:], uint32(wr.size))
	le.PutUint64(rec[8:], seq)
	le.PutUint64(rec[16:], uint64(cutTime(wr.life, seq)))
	copy(rec[recHeaderSize:], cutPayload(wr.life, seq, wr.size))
	le.PutUint32(rec[0:], recordCRC(rec))
	return rec
}

// cutState is the file at one moment of a workload.
type cutState struct {
	content    []byte // as the writer's process saw it (the page cache)
	durable    []byte // at a sync point: what is on the disk; nil otherwise
	head, tail uint64 // the writer's then
}

// cutRun is a workload's history: every record written, and the file
// at every moment a power cut is modelled from.
type cutRun struct {
	g      geometry
	writes map[uint64][]cutWrite // by sequence number, oldest first
	states []cutState
	maxSeq uint64
}

// intact returns which write of seq the file holds intact, comparing its
// descriptor and bytes with what was written.
func (r *cutRun) intact(file []byte, seq uint64) (cutWrite, bool) {
	le := binary.LittleEndian
	d := r.g.descOffset + (seq&(r.g.descCount-1))*descSize
	if le.Uint64(file[d:]) != seq {
		return cutWrite{}, false
	}
	off := le.Uint64(file[d+8:]) & (r.g.dataSize - 1)
	data := file[r.g.dataOffset:]
	for _, wr := range r.writes[seq] {
		rec := cutRecord(seq, wr)
		if off+uint64(len(rec)) <= r.g.dataSize && bytes.Equal(data[off:off+uint64(len(rec))], rec) {
			return wr, true
		}
	}
	return cutWrite{}, false
}

// snapshot records the file's content now.
func (r *cutRun) snapshot(t testing.TB, w *Writer, path string) *cutState {
	t.Helper()
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	r.states = append(r.states, cutState{content: content, head: st.Head, tail: st.Oldest})
	return &r.states[len(r.states)-1]
}

// sync calls w.Sync and records what it made durable: the ranges it
// writes, as it computes them, on top of what was durable before.
func (r *cutRun) sync(t testing.TB, w *Writer, path string) {
	t.Helper()
	ranges := w.dirtyRanges(w.load(offHeadSeq), w.load(offHeadPos))
	if _, err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	var prev []byte
	for i := len(r.states) - 1; prev == nil; i-- {
		prev = r.states[i].durable
	}
	st := r.snapshot(t, w, path)
	st.durable = bytes.Clone(prev)
	for _, step := range ranges {
		for _, rg := range step {
			copy(st.durable[rg[0]:rg[1]], st.content[rg[0]:rg[1]])
		}
	}
}

// cutWorkload runs writer life of w on path: syncs sync points, each
// after one to four batches of one to 30 records of sizes below spread.
func cutWorkload(t testing.TB, w *Writer, path string, r *cutRun, life int, rng *rand.Rand, syncs, spread int) {
	t.Helper()
	st := r.snapshot(t, w, path)
	st.durable = st.content // OpenWriter made the whole file durable
	for range syncs {
		for range 1 + rng.IntN(4) {
			for range 1 + rng.IntN(30) {
				seq := w.Stats().Head
				wr := cutWrite{life: life, size: rng.IntN(spread)}
				if _, err := w.Add(cutTime(life, seq), cutPayload(life, seq, wr.size)); err != nil {
					t.Fatal(err)
				}
				r.writes[seq] = append(r.writes[seq], wr)
				r.maxSeq = max(r.maxSeq, seq)
			}
			w.Publish()
			r.snapshot(t, w, path)
		}
		r.sync(t, w, path)
	}
}

// newCutRun runs a first writer's workload on a new ring in dir.
func newCutRun(t testing.TB, dir string, opts Options, seed uint64, syncs, spread int) *cutRun {
	t.Helper()
	path := filepath.Join(dir, "ring")
	opts.Durable = true
	w, err := OpenWriter(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	r := &cutRun{g: w.geometry, writes: map[uint64][]cutWrite{}}
	cutWorkload(t, w, path, r, 1, rand.New(rand.NewPCG(seed, 1)), syncs, spread)
	return r
}

// cut builds the file a power cut leaves, with choose(n) (in [0, n))
// making every choice. It returns the file, the sync point it follows
// and the state it cut in.
func (r *cutRun) cut(choose func(n int) int) (file []byte, synced, at cutState) {
	var points []int
	for i, s := range r.states {
		if s.durable != nil {
			points = append(points, i)
		}
	}
	k := points[choose(len(points))]
	last := k
	for last+1 < len(r.states) && r.states[last+1].durable == nil {
		last++
	}
	c := k + choose(last-k+1)
	file = bytes.Clone(r.states[k].durable)
	page := int(pageSize)
	for off := 0; off < len(file); off += page {
		changed := false
		for i := k; i <= c && !changed; i++ {
			changed = !bytes.Equal(r.states[i].content[off:off+page], file[off:off+page])
		}
		if !changed {
			continue
		}
		// The page holds what sync point k made durable, or what it held
		// at any moment from k to the cut (the kernel may write a page
		// back at any time); sometimes torn between two of those by
		// sector.
		from := func() []byte {
			if i := choose(c - k + 2); i > 0 {
				return r.states[k+i-1].content[off : off+page]
			}
			return r.states[k].durable[off : off+page]
		}
		if choose(4) > 0 {
			copy(file[off:], from())
			continue
		}
		a, b := from(), from()
		for s := 0; s < page; s += 512 {
			src := a
			if choose(2) == 1 {
				src = b
			}
			copy(file[off+s:off+s+512], src[s:s+512])
		}
	}
	return file, r.states[k], r.states[c]
}

// checkCut opens the file a power cut left (written to path) and checks
// it against the run. It returns the open writer.
func (r *cutRun) checkCut(t testing.TB, path string, file []byte, synced, at cutState) *Writer {
	t.Helper()
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	// What the file holds intact, judged by its bytes alone.
	var highest uint64
	for s := uint64(FirstSeq); s <= r.maxSeq; s++ {
		if _, ok := r.intact(file, s); ok {
			highest = s
		}
	}
	w, err := OpenWriter(path, Options{Durable: true})
	if err != nil {
		t.Fatalf("open after the cut: %v", err)
	}
	rs, st := w.Recovered(), w.Stats()
	if highest != 0 && st.Head != highest+1 {
		w.Close()
		t.Fatalf("head %d after the cut, want %d: right after the highest intact record (%+v)", st.Head, highest+1, rs)
	}
	if rs.Records+rs.Damaged != st.Head-st.Oldest {
		w.Close()
		t.Fatalf("recovery counts %+v do not add up to the live range [%d, %d)", rs, st.Oldest, st.Head)
	}
	// Every live descriptor, holes included, names its sequence number at
	// a position in order: the writer's eviction walks them.
	pos := w.tailPos
	for s := st.Oldest; s < st.Head; s++ {
		if *w.descSeq(s) != s || *w.descPos(s) < pos || *w.descPos(s) > w.headPos {
			w.Close()
			t.Fatalf("descriptor of live record %d: seq %d pos %d, after %d, head at %d", s, *w.descSeq(s), *w.descPos(s), pos, w.headPos)
		}
		pos = *w.descPos(s)
	}
	got := r.readBack(t, path)
	for s := max(at.tail, FirstSeq); s < synced.head; s++ {
		want, ok := r.intact(synced.content, s)
		if !ok {
			continue // a hole already at the sync point
		}
		if g, ok := got[s]; !ok || g != want {
			w.Close()
			t.Fatalf("record %d, synced (head %d at the sync point, tail %d at the cut), is lost after the cut (read %v)", s, synced.head, at.tail, ok)
		}
	}
	return w
}

// readBack reads every record of the ring at path, failing on any record
// that is not exactly one the writer wrote. It returns which write each
// sequence number holds.
func (r *cutRun) readBack(t testing.TB, path string) map[uint64]cutWrite {
	t.Helper()
	rd, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	got := map[uint64]cutWrite{}
	c := rd.Cursor(0)
	for {
		rec, _, err := c.Next()
		if errors.Is(err, ErrNoRecord) {
			return got
		}
		found := false
		for _, wr := range r.writes[rec.Seq] {
			if rec.Time == cutTime(wr.life, rec.Seq) && bytes.Equal(rec.Payload, cutPayload(wr.life, rec.Seq, wr.size)) {
				got[rec.Seq], found = wr, true
			}
		}
		if !found {
			t.Fatalf("record %d read after the cut is none the writer wrote (%d bytes, time %d)", rec.Seq, len(rec.Payload), rec.Time)
		}
	}
}

// appendAfterCut appends a record after recovery and reads it back.
func appendAfterCut(t testing.TB, w *Writer, path string) {
	t.Helper()
	seq := w.Stats().Head
	payload := payloadFor(seq, 100)
	got, err := w.Append(0, payload)
	if err != nil || got != seq {
		t.Fatalf("append after the cut: seq %d, %v; want %d", got, err, seq)
	}
	rd, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rec, lost, err := rd.Cursor(seq).Next()
	if err != nil || lost != 0 || rec.Seq != seq || !bytes.Equal(rec.Payload, payload) {
		t.Fatalf("record %d appended after the cut reads back as %d (lost %d, %v)", seq, rec.Seq, lost, err)
	}
}

// cutWorkloads are the workloads the simulation cuts: small rings, so that
// they wrap and evict by descriptors (64 records) and by bytes, and
// records straddle pages.
var cutWorkloads = []struct {
	opts          Options
	syncs, spread int
}{
	{Options{Size: MinSize, Records: 64}, 8, 1200},
	{Options{Size: MinSize, Records: 1024}, 8, 400},
	{Options{Size: MinSize, Records: 256}, 6, 3000},
}

var cutRuns struct {
	once sync.Once
	runs []*cutRun
}

// sharedCutRuns runs the workloads once per test process.
func sharedCutRuns(t testing.TB) []*cutRun {
	cutRuns.once.Do(func() {
		dir, err := os.MkdirTemp("", "shmring-powercut")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		for i, wl := range cutWorkloads {
			sub := filepath.Join(dir, fmt.Sprint(i))
			if err := os.Mkdir(sub, 0o700); err != nil {
				t.Fatal(err)
			}
			cutRuns.runs = append(cutRuns.runs, newCutRun(t, sub, wl.opts, uint64(i), wl.syncs, wl.spread))
		}
	})
	if len(cutRuns.runs) != len(cutWorkloads) {
		t.Fatal("the power-cut workloads failed")
	}
	return cutRuns.runs
}

// TestPowerCut cuts each workload at random sync points and moments with
// random pages (and sectors) written, many times over.
func TestPowerCut(t *testing.T) {
	runs := sharedCutRuns(t)
	rng := rand.New(rand.NewPCG(7, 7))
	choose := func(n int) int { return rng.IntN(n) }
	cuts := 400
	if testing.Short() {
		cuts = 100
	}
	path := filepath.Join(t.TempDir(), "ring")
	for i := range cuts {
		r := runs[i%len(runs)]
		file, synced, at := r.cut(choose)
		w := r.checkCut(t, path, file, synced, at)
		appendAfterCut(t, w, path)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPowerCutTwice cuts power, lets a second writer recover and write,
// and cuts again: the second writer's synced records survive, and records
// the first one wrote and that recovery dropped never come back torn.
func TestPowerCutTwice(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 11))
	choose := func(n int) int { return rng.IntN(n) }
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	dir := t.TempDir()
	for i := range rounds {
		wl := cutWorkloads[i%len(cutWorkloads)]
		sub := filepath.Join(dir, fmt.Sprint(i))
		if err := os.Mkdir(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		r := newCutRun(t, sub, wl.opts, uint64(100+i), 3, wl.spread)
		path := filepath.Join(sub, "cut")
		file, synced, at := r.cut(choose)
		w := r.checkCut(t, path, file, synced, at)
		// The second life goes on from the recovered file, sometimes for
		// less than the first one lost, so that records of the first
		// life lie past the second's head.
		r.states = nil
		cutWorkload(t, w, path, r, 2, rng, 1+i%3, wl.spread)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		file, synced, at = r.cut(choose)
		w = r.checkCut(t, filepath.Join(sub, "cut2"), file, synced, at)
		appendAfterCut(t, w, filepath.Join(sub, "cut2"))
		w.Close()
	}
}

// FuzzPowerCut fuzzes the cut: the first byte picks the workload, the
// others every choice (sync point, moment, which pages and sectors are
// new); choices past the input's end are 0 (what was durable). The seed
// corpus is in testdata/fuzz/FuzzPowerCut.
func FuzzPowerCut(f *testing.F) {
	runs := sharedCutRuns(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		r := runs[int(in[0])%len(runs)]
		in = in[1:]
		choose := func(n int) int {
			if len(in) == 0 {
				return 0
			}
			c := int(in[0]) % n
			in = in[1:]
			return c
		}
		file, synced, at := r.cut(choose)
		path := filepath.Join(t.TempDir(), "ring")
		w := r.checkCut(t, path, file, synced, at)
		defer w.Close()
		appendAfterCut(t, w, path)
	})
}
