//go:build linux

package shmring

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Record is one record read from a ring.
type Record struct {
	Seq     uint64
	Time    int64  // Unix nanoseconds, as given to Writer.Add
	Payload []byte // a copy owned by the caller (see Cursor.Next)
}

// Stats is a snapshot of a ring's state.
type Stats struct {
	Size      uint64    // data area in bytes
	Records   uint64    // descriptor count: most records held at once
	Head      uint64    // next sequence number to be written
	Oldest    uint64    // oldest live sequence number; Head-Oldest records are held
	BytesUsed uint64    // data bytes held by live records, padding included
	Created   time.Time // when the ring file was created
}

// Reader reads a ring through a read-only shared mapping; it needs only read
// permission on the file and may live in any process, including the
// writer's. A Reader is safe for concurrent use; each goroutine reads with
// its own Cursor.
type Reader struct {
	mapping
	path string

	mu      sync.Mutex
	notify  chan struct{} // closed and replaced when the leader wakes
	leading bool          // a Wait caller sleeps in FUTEX_WAIT
	closed  bool
	pace    paceState // WaitPaced's shared wake-ups
}

// OpenReader maps the ring at path read-only.
func OpenReader(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open ring %s: %w", path, err)
	}
	defer f.Close() // the mapping outlives the descriptor
	g, err := readGeometry(f)
	if err != nil {
		return nil, fmt.Errorf("open ring %s: %w", path, err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(g.fileSize()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("open ring %s: mmap: %w", path, err)
	}
	return &Reader{mapping: newMapping(mem, g), path: path, notify: make(chan struct{})}, nil
}

// Path returns the file the reader maps.
func (r *Reader) Path() string { return r.path }

// bounds returns the published head and the oldest sequence number that may
// still be live, clamped so that damaged counters cannot make a caller walk
// more than one descriptor table.
func (r *Reader) bounds() (oldest, head uint64) {
	head = r.load(offHeadSeq)
	oldest = r.load(offTailSeq)
	if head >= r.descCount && oldest < head-r.descCount {
		oldest = head - r.descCount
	}
	if oldest > head {
		oldest = head
	}
	return max(oldest, FirstSeq), head
}

// Stats reports the ring's published state.
func (r *Reader) Stats() Stats {
	oldest, head := r.bounds()
	hp, tp := r.load(offHeadPos), r.load(offTailPos)
	used := uint64(0)
	if hp >= tp && hp-tp <= r.dataSize {
		used = hp - tp
	}
	return Stats{
		Size:      r.dataSize,
		Records:   r.descCount,
		Head:      head,
		Oldest:    oldest,
		BytesUsed: used,
		Created:   time.Unix(0, r.created),
	}
}

// Latest returns the sequence number n records before the head, or the
// oldest live one if fewer are held: a cursor position from which reading
// yields the latest n records.
func (r *Reader) Latest(n uint64) uint64 {
	oldest, head := r.bounds()
	if head-oldest <= n {
		return oldest
	}
	return head - n
}

// Head returns the sequence number the next published record will have.
func (r *Reader) Head() uint64 { return r.load(offHeadSeq) }

// readResult says what reading one sequence number found.
type readResult int

const (
	readOK      readResult = iota
	readLapped             // overwritten before or while it was copied
	readDamaged            // live, but its bytes fail validation
)

// readAt copies record seq (oldest <= seq < head) into buf and validates the
// copy: the descriptor still names seq, the tail intent has not passed it,
// and the record's own seq and CRC32C match.
func (r *Reader) readAt(seq uint64, buf []byte) (Record, []byte, readResult) {
	if r.loadDescSeq(seq) != seq {
		return Record{}, buf, r.lappedOrDamaged(seq, 0)
	}
	pos := atomic.LoadUint64(r.descPos(seq))
	off := pos & r.dataMask
	if off&(recAlign-1) != 0 || off+recHeaderSize > r.dataSize {
		return Record{}, buf, r.lappedOrDamaged(seq, pos)
	}
	n := uint64(binary.LittleEndian.Uint32(r.data[off+4:]))
	if n > r.dataSize-off-recHeaderSize {
		return Record{}, buf, r.lappedOrDamaged(seq, pos)
	}
	total := recHeaderSize + int(n)
	if cap(buf) < total {
		buf = make([]byte, total)
	}
	rec := buf[:total]
	copy(rec, r.data[off:])
	if r.loadDescSeq(seq) != seq || r.load(offTailSeq) > seq || r.load(offTailPos) > pos {
		return Record{}, buf, readLapped
	}
	if _, ok := checkRecord(rec, seq); !ok {
		return Record{}, buf, r.lappedOrDamaged(seq, pos)
	}
	return Record{
		Seq:     seq,
		Time:    int64(binary.LittleEndian.Uint64(rec[16:])),
		Payload: rec[recHeaderSize:],
	}, buf, readOK
}

// lappedOrDamaged decides why seq could not be read: if the writer's tail
// has passed it, it was overwritten; otherwise its bytes are damaged.
func (r *Reader) lappedOrDamaged(seq, pos uint64) readResult {
	if r.load(offTailSeq) > seq || (pos != 0 && r.load(offTailPos) > pos) {
		return readLapped
	}
	return readDamaged
}

// Cursor reads records in sequence order from a Reader. A Cursor is owned by
// one goroutine.
type Cursor struct {
	r       *Reader
	next    uint64
	buf     []byte
	damaged uint64
}

// Cursor returns a cursor positioned at seq: the next record it returns is
// seq, or the oldest live record after it if seq was overwritten.
func (r *Reader) Cursor(seq uint64) *Cursor {
	return &Cursor{r: r, next: max(seq, FirstSeq)}
}

// Pos returns the sequence number the cursor reads next; it resumes reading
// exactly where a previous cursor stopped.
func (c *Cursor) Pos() uint64 { return c.next }

// Seek moves the cursor to seq: the next record it returns is seq, or the
// oldest live record after it. Seeking backwards one record at a time is how
// callers scan from the newest record towards the oldest.
func (c *Cursor) Seek(seq uint64) { c.next = max(seq, FirstSeq) }

// Damaged returns how many records the cursor skipped because their bytes
// failed validation (they are included in the lost counts too).
func (c *Cursor) Damaged() uint64 { return c.damaged }

// Next returns the next record. lost is the number of records skipped
// before it because the writer overwrote them before they were read (or
// they were damaged); it is valid whatever err is. err is ErrNoRecord when
// the cursor has caught up with the published head.
//
// The returned payload aliases a buffer owned by the cursor and is valid
// until the next call to Next; copy it to keep it.
func (c *Cursor) Next() (rec Record, lost uint64, err error) { return c.NextWhere(nil) }

// PeekSize is the most of a payload NextWhere shows its keep function.
const PeekSize = 64

// NextWhere is Next for a reader that wants only some records and can tell
// which from the start of a payload. keep sees up to PeekSize bytes of each
// record's payload where it lies in the mapping: it must not keep the
// slice, and must accept any bytes, as the writer may be overwriting them.
// A record keep rejects is passed over without being copied or validated,
// and counts neither as lost nor as damaged, whatever its state; one it
// accepts is read and validated as Next reads it, and returned. Records
// overwritten before they were looked at are counted lost, as by Next. A
// nil keep keeps every record.
//
// A reader of one user's records among many skips the others' at the cost
// of a few loads each, rather than a copy and a CRC32C of every record.
func (c *Cursor) NextWhere(keep func(prefix []byte) bool) (rec Record, lost uint64, err error) {
	for {
		oldest, head := c.r.bounds()
		if c.next >= head {
			return Record{}, lost, ErrNoRecord
		}
		if c.next < oldest {
			lost += oldest - c.next
			c.next = oldest
			continue
		}
		if keep != nil && c.r.rejects(c.next, keep) {
			c.next++
			continue
		}
		var res readResult
		rec, c.buf, res = c.r.readAt(c.next, c.buf)
		switch res {
		case readOK:
			c.next++
			return rec, lost, nil
		case readDamaged:
			c.damaged++
			lost++
			c.next++
		case readLapped:
			// The writer has claimed this record's space: it is gone
			// even if the tail sequence number has not caught up yet.
			lost++
			c.next++
		}
	}
}

// rejects reports whether keep rejects record seq's payload, read in place,
// and the record was still seq's once keep had looked. Anything else
// (seq gone, its descriptor or length out of bounds, keep accepting) is
// false: Next then decides.
func (r *Reader) rejects(seq uint64, keep func([]byte) bool) bool {
	if r.loadDescSeq(seq) != seq {
		return false
	}
	pos := atomic.LoadUint64(r.descPos(seq))
	off := pos & r.dataMask
	if off&(recAlign-1) != 0 || off+recHeaderSize > r.dataSize {
		return false
	}
	n := uint64(binary.LittleEndian.Uint32(r.data[off+4:]))
	if n > r.dataSize-off-recHeaderSize {
		return false
	}
	start := off + recHeaderSize
	if keep(r.data[start : start+min(n, PeekSize) : start+min(n, PeekSize)]) {
		return false
	}
	return r.loadDescSeq(seq) == seq && r.load(offTailSeq) <= seq && r.load(offTailPos) <= pos
}

// cancelPoll bounds one futex sleep in Wait: the longest a cancellation
// can go unnoticed.
const cancelPoll = 250 * time.Millisecond

// Wait blocks until a record with sequence number >= seq is published, ctx
// is done, or the reader is closed. It sleeps on the ring's futex, so it
// wakes within microseconds of a Publish in any process.
//
// However many goroutines wait, at most one of them (the leader) sleeps in
// FUTEX_WAIT; when it wakes it broadcasts to the others through a channel,
// and one of those becomes the next leader.
func (r *Reader) Wait(ctx context.Context, seq uint64) error {
	word := r.futex()
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return ErrClosed
		}
		v := loadUint32(word)
		if r.Head() > seq {
			r.mu.Unlock()
			return nil
		}
		if r.leading {
			ch := r.notify
			r.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		r.leading = true
		r.mu.Unlock()

		// A cancelled context interrupts the sleep with a wake-up; the
		// spurious wake-ups it causes elsewhere are harmless. That wake-up
		// is lost if it lands between the check of ctx and the start of
		// the sleep (a reader cannot change the word through its
		// read-only mapping to prevent that), so the sleep is bounded:
		// in that rare case cancellation takes up to cancelPoll.
		stop := context.AfterFunc(ctx, func() { futexWakeAll(word) })
		if ctx.Err() == nil {
			futexWaitOn(word, v, cancelPoll)
		}
		stop()

		r.mu.Lock()
		r.leading = false
		close(r.notify) // wake the others: one of them leads next
		r.notify = make(chan struct{})
		r.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// Close wakes Wait callers with ErrClosed and unmaps the ring. Records
// returned earlier stay valid: they are copies.
func (r *Reader) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.notify)
	r.notify = make(chan struct{})
	if r.pace.ch != nil {
		close(r.pace.ch)
		r.pace.ch = nil
	}
	for r.leading {
		// The leader sleeps in FUTEX_WAIT on the mapping: wake it and let
		// it leave before unmapping. A FUTEX_WAKE needs no write access.
		r.mu.Unlock()
		futexWakeAll(r.futex())
		time.Sleep(100 * time.Microsecond)
		r.mu.Lock()
	}
	r.mu.Unlock()
	return unix.Munmap(r.mem)
}
