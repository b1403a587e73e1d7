//go:build linux

package shmring

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// SyncStats counts a Writer's syncs, explicit (Sync) and implicit (Release
// of a Durable writer).
type SyncStats struct {
	Syncs  uint64        // completed syncs
	Bytes  uint64        // bytes they wrote: whole pages written since the sync before
	Time   time.Duration // time spent in them
	Errors uint64        // syncs that failed
}

// syncer is the part of a Writer that Sync uses: it may run in any
// goroutine, concurrently with Add and Publish in the writer's.
type syncer struct {
	mu        sync.Mutex
	syncedSeq uint64 // descriptors of sequence numbers below it are durable
	syncedPos uint64 // data before this logical position is durable
	unmapped  bool   // Close unmapped the file: Sync fails with ErrClosed

	syncs, bytes, nanos, errors atomic.Uint64
}

// pageSize is the granularity of msync(2).
var pageSize = uint64(os.Getpagesize())

// Sync makes every record published before the call durable on the
// ring file's storage, with the header and descriptors that make it valid
// after a crash of the machine. It returns the number of bytes it wrote;
// on error some of them may be durable and the rest are retried by the
// next Sync.
//
// Only pages written since the last Sync are written, with msync(MS_SYNC)
// (on Linux a datasync of the range, which flushes the disk's cache), in
// three steps so that nothing durable ever points at what is not: first
// the records, then their descriptors (a descriptor is a record's
// commit), then the header (head and tail). A crash at any moment leaves
// every record of an earlier completed Sync intact (see OpenWriter).
//
// Sync is safe to call from any goroutine, concurrently with Add and
// Publish (a Sync running meanwhile covers what was published when it
// began, perhaps more). After Close it returns ErrClosed. On a tmpfs it
// costs little and makes nothing more durable.
func (w *Writer) Sync() (int, error) {
	w.sync.mu.Lock()
	defer w.sync.mu.Unlock()
	return w.syncLocked()
}

// SyncStats returns the writer's sync counters. It is safe to call from any
// goroutine at any time.
func (w *Writer) SyncStats() SyncStats {
	return SyncStats{
		Syncs:  w.sync.syncs.Load(),
		Bytes:  w.sync.bytes.Load(),
		Time:   time.Duration(w.sync.nanos.Load()),
		Errors: w.sync.errors.Load(),
	}
}

// syncLocked is Sync with w.sync.mu held.
func (w *Writer) syncLocked() (int, error) {
	if w.sync.unmapped {
		return 0, ErrClosed
	}
	start := time.Now()
	head := w.load(offHeadSeq) // before headPos: Publish stores headPos first
	headPos := w.load(offHeadPos)
	var written uint64
	for i, step := range w.dirtyRanges(head, headPos) {
		lo, hi := uint64(1<<63), uint64(0)
		for _, r := range step {
			if r[0] < r[1] {
				written += r[1] - r[0]
				lo, hi = min(lo, r[0]), max(hi, r[1])
			}
		}
		if lo >= hi {
			continue
		}
		// One call over both pieces of a wrapped range: the pages between
		// them are clean, and each msync costs a flush of the disk's cache.
		if err := unix.Msync(w.mem[lo:hi], unix.MS_SYNC); err != nil {
			w.sync.errors.Add(1)
			return 0, fmt.Errorf("sync ring %s: %w", syncSteps[i], err)
		}
	}
	w.sync.syncedSeq, w.sync.syncedPos = max(w.sync.syncedSeq, head), max(w.sync.syncedPos, headPos)
	w.sync.syncs.Add(1)
	w.sync.bytes.Add(written)
	w.sync.nanos.Add(uint64(time.Since(start)))
	return int(written), nil
}

// syncSteps name the steps of a sync, in order.
var syncSteps = [...]string{"records", "descriptors", "header"}

// dirtyRanges returns, for each of syncSteps, the page-aligned file ranges
// (one, or two when they wrap; empty ranges have equal ends) that hold
// what was published up to head and headPos and not synced yet.
func (w *Writer) dirtyRanges(head, headPos uint64) [len(syncSteps)][2][2]uint64 {
	return [...][2][2]uint64{
		w.dataRanges(w.sync.syncedPos, headPos),
		w.descRanges(w.sync.syncedSeq, head),
		{{0, headerSize}},
	}
}

// dataRanges returns the page-aligned file ranges holding the logical data
// positions [from, to): one, or two when they wrap.
func (w *Writer) dataRanges(from, to uint64) [2][2]uint64 {
	return w.pieces(w.dataOffset, from, to, w.dataSize, 1)
}

// descRanges returns the page-aligned file ranges holding the descriptors
// of sequence numbers [from, to).
func (w *Writer) descRanges(from, to uint64) [2][2]uint64 {
	return w.pieces(w.descOffset, from, to, w.descCount, descSize)
}

// pieces maps the span [from, to) of a circular area of n units of unit
// bytes at file offset base to at most two page-aligned file ranges.
func (w *Writer) pieces(base, from, to, n, unit uint64) [2][2]uint64 {
	var r [2][2]uint64
	if to <= from {
		return r
	}
	page := func(a, b uint64) [2]uint64 {
		return [2]uint64{(base + a*unit) &^ (pageSize - 1), (base + b*unit + pageSize - 1) &^ (pageSize - 1)}
	}
	if to-from >= n {
		r[0] = page(0, n)
		return r
	}
	a, b := from&(n-1), to&(n-1)
	if a < b {
		r[0] = page(a, b)
	} else {
		r[0] = page(a, n)
		if b > 0 {
			r[1] = page(0, b)
		}
	}
	return r
}

// markOpen records on the storage, before the writer changes anything,
// that the ring is open: a crash from now on is seen as one.
func (w *Writer) markOpen() error {
	if err := unix.Msync(w.mem[:headerSize], unix.MS_SYNC); err != nil {
		return fmt.Errorf("sync ring header: %w", err)
	}
	return nil
}

// syncRecovered makes what recovery found and wrote durable: records a
// killed writer left in the page cache, holes and cleared descriptors.
func (w *Writer) syncRecovered() error {
	if err := unix.Fdatasync(int(w.f.Fd())); err != nil {
		return fmt.Errorf("sync recovered ring: %w", err)
	}
	w.sync.syncedSeq, w.sync.syncedPos = w.head, w.headPos
	return nil
}
