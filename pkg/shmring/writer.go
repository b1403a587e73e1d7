//go:build linux

package shmring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/collectord/collectord/pkg/bytesize"
	"golang.org/x/sys/unix"
)

// Options configure a ring when it is created. The zero value means defaults.
type Options struct {
	// Size of the data area in bytes: a power of two between MinSize and
	// MaxSize. Zero means DefaultSize when creating, and "whatever the file
	// has" when opening an existing ring. A non-zero Size that differs from
	// an existing file's is an error (ErrGeometry): a ring is never resized
	// or re-initialised implicitly.
	Size uint64
	// Records is the number of descriptors, the most records the ring can
	// hold at once, rounded up to a power of two. Zero means
	// Size/DefaultBytesPerRecord. Ignored when opening an existing ring.
	Records uint64
	// Mode is the ring file's permission. Zero means 0640 for a new file
	// and leaves an existing file's alone; otherwise OpenWriter also sets
	// it on an existing file, so a changed configuration takes effect.
	Mode os.FileMode
	// Group is the group id given the ring file, the readers' group: with
	// Mode 0640 its members may map the ring read-only and no one else
	// may. Zero means the creating process's group for a new file and
	// leaves an existing file's alone. Setting it needs root, or a writer
	// that owns the file and is a member of the group.
	Group int
	// Durable keeps a ring on a disk consistent across power loss.
	// OpenWriter then records on the disk that the ring is open before it
	// changes anything, and makes what it recovered durable; Release makes
	// every record durable (see Sync) before it records that the ring was
	// closed cleanly. Records added in between become durable when Sync is
	// called. Default false, right for a tmpfs: the ring survives its
	// writer's crashes (the page cache keeps what it wrote), not the
	// machine's.
	Durable bool
}

// Writer appends records to a ring. It holds the ring's exclusive flock for
// its whole life, so there is one writer per ring across all processes.
//
// A Writer is not safe for concurrent use: one goroutine appends. Sync and
// SyncStats are the exception: any goroutine may call them.
type Writer struct {
	mapping
	f *os.File

	// Writer-private copies of the live state; the shared ones are stores of these.
	head, headPos uint64
	tail, tailPos uint64
	published     uint64 // head as last published

	recovered RecoveryStats
	closed    bool // no more Add or Publish
	released  bool // the lock is released
	durable   bool // Options.Durable

	sync syncer // Sync's state; Sync may run in another goroutine
}

// RecoveryStats describes what OpenWriter found in an existing ring.
type RecoveryStats struct {
	Created     bool   // the file did not exist and was created
	Records     uint64 // live records verified
	Damaged     uint64 // live records whose checksum failed (readers skip them)
	Unpublished uint64 // committed records past the published head, adopted
	Rebuilt     bool   // the live counters were inconsistent and were rebuilt from the descriptors
	Clean       bool   // the previous writer closed the ring cleanly; records were not re-verified
	// ClosedAt is when the previous writer closed the ring (zero unless
	// Clean): with the time the new writer starts, the handover gap.
	ClosedAt time.Time
}

// OpenWriter opens the ring at path for writing, creating it with opts if it
// does not exist, and recovers its state: records committed before a crash
// stay readable, nothing half-written becomes visible, and sequence numbers
// continue. An existing ring is never erased.
func OpenWriter(path string, opts Options) (*Writer, error) {
	f, created, err := openOrCreate(path, opts)
	if err != nil {
		return nil, err
	}
	if !created {
		if err := applyAccess(f, opts); err != nil {
			f.Close()
			return nil, fmt.Errorf("open ring %s: %w", path, err)
		}
	}
	w, err := newWriter(f, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open ring %s: %w", path, err)
	}
	w.recovered.Created = created
	return w, nil
}

func newWriter(f *os.File, opts Options) (*Writer, error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w%s", ErrLocked, lockHolder(f))
		}
		return nil, fmt.Errorf("lock: %w", err)
	}
	g, err := readGeometry(f)
	if err != nil {
		return nil, err
	}
	if opts.Size != 0 && opts.Size != g.dataSize {
		return nil, fmt.Errorf("%w: the file holds a %s ring, %s was asked for; remove the file to start a new ring (its records are lost) or use its size",
			ErrGeometry, bytesize.Size(g.dataSize), bytesize.Size(opts.Size))
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(g.fileSize()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap: %w", err)
	}
	w := &Writer{mapping: newMapping(mem, g), f: f, durable: opts.Durable}
	w.recovered.Clean = binary.LittleEndian.Uint32(w.mem[offWriter:]) == 0
	if ns := int64(binary.LittleEndian.Uint64(w.mem[offClosed:])); w.recovered.Clean && ns > 0 {
		w.recovered.ClosedAt = time.Unix(0, ns)
	}
	// From here on a crash is a crash: the next writer rebuilds the live
	// range from the records (see recover).
	binary.LittleEndian.PutUint32(w.mem[offWriter:], uint32(os.Getpid()))
	if w.durable {
		if err := w.markOpen(); err != nil {
			unix.Munmap(mem)
			return nil, err
		}
	}
	w.recover()
	w.sync.syncedSeq, w.sync.syncedPos = w.head, w.headPos
	if w.durable {
		if err := w.syncRecovered(); err != nil {
			unix.Munmap(mem)
			return nil, err
		}
	}
	return w, nil
}

// MaxPayload returns the largest payload Add accepts.
func (w *Writer) MaxPayload() int { return w.maxPayload() }

// Add appends one record without publishing it: readers see it after the
// next Publish. The payload is copied; Add keeps no reference to it.
// It returns the record's sequence number. Add never blocks on readers: the
// oldest records are overwritten to make room.
func (w *Writer) Add(ts int64, payload []byte) (uint64, error) {
	if w.closed {
		return 0, ErrClosed
	}
	if len(payload) > w.maxPayload() {
		return 0, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(payload), w.maxPayload())
	}
	size := recordSize(len(payload))
	seq := w.head
	pos := w.headPos
	off := pos & w.dataMask
	padded := false
	if off+size > w.dataSize {
		pos += w.dataSize - off // never split a record across the wrap
		padded = true
	}
	// Make room: the descriptor slot, then the bytes. The new tail is
	// published before anything is overwritten (tail intent).
	moved := false
	if seq-w.tail >= w.descCount {
		w.evict(pos)
		moved = true
	}
	for pos+size-w.tailPos > w.dataSize {
		w.evict(pos)
		moved = true
	}
	if moved {
		w.storeTail()
	}
	le := binary.LittleEndian
	if padded {
		le.PutUint32(w.data[off+4:], padMarker)
		off = 0
	}
	rec := w.data[off : off+size]
	le.PutUint32(rec[4:], uint32(len(payload)))
	le.PutUint64(rec[8:], seq)
	le.PutUint64(rec[16:], uint64(ts))
	copy(rec[recHeaderSize:], payload)
	le.PutUint32(rec[0:], recordCRC(rec[:recHeaderSize+len(payload)]))
	// Commit: descriptor position, then its seq.
	atomic.StoreUint64(w.descPos(seq), pos)
	atomic.StoreUint64(w.descSeq(seq), seq)
	w.head = seq + 1
	w.headPos = pos + size
	return seq, nil
}

// evict drops the oldest live record; next is where the record being added
// starts, which becomes the tail once every older record is gone.
func (w *Writer) evict(next uint64) {
	w.tail++
	if w.tail == w.head {
		w.tailPos = next
		return
	}
	w.tailPos = *w.descPos(w.tail)
}

func (w *Writer) storeTail() {
	atomic.StoreUint64(w.word64(offTailPos), w.tailPos)
	atomic.StoreUint64(w.word64(offTailSeq), w.tail)
}

// Publish makes every record added so far visible to readers and wakes
// waiting readers in all processes, with one futex wake however many records
// it publishes. It does nothing when nothing was added.
func (w *Writer) Publish() {
	if w.closed || w.head == w.published {
		return
	}
	atomic.StoreUint64(w.word64(offHeadPos), w.headPos)
	atomic.StoreUint64(w.word64(offHeadSeq), w.head)
	w.published = w.head
	atomic.AddUint32(w.futex(), 1)
	futexWakeAll(w.futex())
}

// Append adds one record and publishes it.
func (w *Writer) Append(ts int64, payload []byte) (uint64, error) {
	seq, err := w.Add(ts, payload)
	if err == nil {
		w.Publish()
	}
	return seq, err
}

// Recovered reports what opening the ring found.
func (w *Writer) Recovered() RecoveryStats { return w.recovered }

// Stats reports the writer's view of the ring, including unpublished records.
func (w *Writer) Stats() Stats {
	return Stats{
		Size:      w.dataSize,
		Records:   w.descCount,
		Head:      w.head,
		Oldest:    w.tail,
		BytesUsed: w.headPos - w.tailPos,
		Created:   time.Unix(0, w.created),
	}
}

// Release publishes what was added, marks the ring closed cleanly and
// releases the writer lock, so that another writer (a new process taking
// over) can open the ring at once. The writer adds nothing after it; Close
// then unmaps, which for a large ring takes milliseconds that no longer
// delay the next writer.
//
// A Durable writer first makes every record durable (Sync), then records
// the clean close durably. If that sync fails, Release returns its error
// and leaves the ring marked open, so that the next writer verifies it;
// the lock is released either way.
func (w *Writer) Release() error {
	if w.released {
		return nil
	}
	w.Publish()
	w.closed, w.released = true, true
	err := w.markClosed()
	// The mapping holds the file, and with it the lock, until it is
	// unmapped: unlock explicitly.
	if uerr := unix.Flock(int(w.f.Fd()), unix.LOCK_UN); err == nil {
		err = uerr
	}
	return err
}

// markClosed records that the ring was closed cleanly, after, for a
// Durable writer, making every record durable.
func (w *Writer) markClosed() error {
	w.sync.mu.Lock()
	defer w.sync.mu.Unlock()
	if w.durable {
		if _, err := w.syncLocked(); err != nil {
			return err
		}
	}
	binary.LittleEndian.PutUint64(w.mem[offClosed:], uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint32(w.mem[offWriter:], 0) // closed cleanly
	if w.durable {
		if err := unix.Msync(w.mem[:headerSize], unix.MS_SYNC); err != nil {
			return fmt.Errorf("sync ring header: %w", err)
		}
	}
	return nil
}

// Close releases the ring (see Release) if that was not done, and unmaps
// it. The file stays, with every record in it.
func (w *Writer) Close() error {
	if w.mem == nil {
		return nil
	}
	err := w.Release()
	w.sync.mu.Lock() // a Sync in another goroutine must not see the mapping go
	if merr := unix.Munmap(w.mem); err == nil {
		err = merr
	}
	w.mem = nil
	w.sync.unmapped = true
	w.sync.mu.Unlock()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}
