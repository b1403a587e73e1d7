package shmring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

// On-file layout, all integers little-endian. See doc.go for the prose.
const (
	magic         = "CLDRING\x00"
	layoutVersion = 1

	headerSize = 4096

	// Geometry: written once at creation, covered by geomCRC.
	offMagic      = 0  // [8]byte
	offVersion    = 8  // uint32
	offHeaderSize = 12 // uint32
	offDataSize   = 16 // uint64, power of two
	offDescCount  = 24 // uint64, power of two
	offDescOffset = 32 // uint64
	offDataOffset = 40 // uint64
	offCreated    = 48 // int64, Unix nanoseconds
	offGeomCRC    = 56 // uint32, CRC32C of bytes [0, 56)

	// Live state, written by the writer only, each word on its own cache line.
	offHeadSeq = 128 // uint64: next sequence number; every seq < head is committed
	offHeadPos = 136 // uint64: logical byte position where the next record goes
	offTailSeq = 192 // uint64: oldest live sequence number ("tail intent")
	offTailPos = 200 // uint64: logical position of the oldest live record
	offFutex   = 256 // uint32: bumped after every publish; FUTEX_WAKE follows
	offWriter  = 320 // uint32: pid of the current writer (informational)
	offClosed  = 328 // int64: when the last writer closed the ring cleanly, Unix nanoseconds

	descSize = 16 // per descriptor: seq uint64, pos uint64

	recHeaderSize = 24 // crc uint32, len uint32, seq uint64, time int64
	recAlign      = 8
	padMarker     = ^uint32(0) // len value of a padding record before the wrap

	// FirstSeq is the sequence number of the first record ever appended to a ring.
	FirstSeq = 1
)

// Geometry limits.
const (
	// MinSize is the smallest data area a ring may have.
	MinSize = 64 << 10
	// MaxSize is the largest data area a ring may have.
	MaxSize = 1 << 40
	// DefaultSize is the data area size used when Options.Size is zero.
	DefaultSize = 64 << 20
	// DefaultBytesPerRecord sizes the descriptor table when Options.Records is
	// zero: one descriptor per this many data bytes.
	DefaultBytesPerRecord = 128
)

// castagnoli builds the CRC32C tables on first use rather than at program
// start, where they would cost every short-lived reader (logctl) ~0.15 ms.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// Errors returned by this package; match them with errors.Is.
var (
	// ErrLocked means another process holds the ring's writer lock.
	ErrLocked = errors.New("ring is locked by another writer")
	// ErrBadFile means the file is not a ring of a layout this package reads.
	ErrBadFile = errors.New("not a collectord ring file")
	// ErrGeometry means the file's size does not match the requested one.
	ErrGeometry = errors.New("ring geometry mismatch")
	// ErrTooLarge means a payload exceeds MaxPayload.
	ErrTooLarge = errors.New("record too large for ring")
	// ErrNoRecord means the cursor has caught up with the writer.
	ErrNoRecord = errors.New("no record yet")
	// ErrClosed means the ring was closed.
	ErrClosed = errors.New("ring closed")
)

// geometry is the immutable part of the header.
type geometry struct {
	dataSize   uint64
	descCount  uint64
	descOffset uint64
	dataOffset uint64
	created    int64
}

func (g geometry) fileSize() int64 { return int64(g.dataOffset + g.dataSize) }

// maxPayload is the largest payload a ring of this geometry accepts: an
// eighth of the data area, so one record never evicts most of the ring.
func (g geometry) maxPayload() int { return int(g.dataSize/8) - recHeaderSize }

func newGeometry(size, records uint64, created int64) (geometry, error) {
	if size < MinSize || size > MaxSize || size&(size-1) != 0 {
		return geometry{}, fmt.Errorf("ring size %d: must be a power of two between %d and %d", size, MinSize, uint64(MaxSize))
	}
	if records == 0 {
		records = size / DefaultBytesPerRecord
	}
	if records < 64 || records > size/recAlign {
		return geometry{}, fmt.Errorf("ring records %d: must be between 64 and %d", records, size/recAlign)
	}
	records = 1 << (64 - bits.LeadingZeros64(records-1)) // round up to a power of two
	descBytes := records * descSize
	return geometry{
		dataSize:   size,
		descCount:  records,
		descOffset: headerSize,
		dataOffset: headerSize + (descBytes+headerSize-1)/headerSize*headerSize,
		created:    created,
	}, nil
}

func (g geometry) encode(hdr []byte) {
	copy(hdr[offMagic:], magic)
	le := binary.LittleEndian
	le.PutUint32(hdr[offVersion:], layoutVersion)
	le.PutUint32(hdr[offHeaderSize:], headerSize)
	le.PutUint64(hdr[offDataSize:], g.dataSize)
	le.PutUint64(hdr[offDescCount:], g.descCount)
	le.PutUint64(hdr[offDescOffset:], g.descOffset)
	le.PutUint64(hdr[offDataOffset:], g.dataOffset)
	le.PutUint64(hdr[offCreated:], uint64(g.created))
	le.PutUint32(hdr[offGeomCRC:], crc32.Checksum(hdr[:offGeomCRC], castagnoli()))
}

// decodeGeometry validates the immutable header of a ring file of fileSize bytes.
func decodeGeometry(hdr []byte, fileSize int64) (geometry, error) {
	if len(hdr) < headerSize || fileSize < headerSize {
		return geometry{}, fmt.Errorf("%w: file is %d bytes, shorter than the %d-byte header", ErrBadFile, fileSize, headerSize)
	}
	if string(hdr[offMagic:offMagic+8]) != magic {
		return geometry{}, fmt.Errorf("%w: bad magic %q", ErrBadFile, hdr[offMagic:offMagic+8])
	}
	le := binary.LittleEndian
	if v := le.Uint32(hdr[offVersion:]); v != layoutVersion {
		return geometry{}, fmt.Errorf("%w: layout version %d, this program reads version %d", ErrBadFile, v, layoutVersion)
	}
	if got, want := le.Uint32(hdr[offGeomCRC:]), crc32.Checksum(hdr[:offGeomCRC], castagnoli()); got != want {
		return geometry{}, fmt.Errorf("%w: header checksum %#x, computed %#x", ErrBadFile, got, want)
	}
	g := geometry{
		dataSize:   le.Uint64(hdr[offDataSize:]),
		descCount:  le.Uint64(hdr[offDescCount:]),
		descOffset: le.Uint64(hdr[offDescOffset:]),
		dataOffset: le.Uint64(hdr[offDataOffset:]),
		created:    int64(le.Uint64(hdr[offCreated:])),
	}
	want, err := newGeometry(g.dataSize, g.descCount, g.created)
	if err != nil {
		return geometry{}, fmt.Errorf("%w: %v", ErrBadFile, err)
	}
	if le.Uint32(hdr[offHeaderSize:]) != headerSize || want != g {
		return geometry{}, fmt.Errorf("%w: inconsistent geometry in header", ErrBadFile)
	}
	if fileSize < g.fileSize() {
		return geometry{}, fmt.Errorf("%w: file is %d bytes, header says %d (truncated?)", ErrBadFile, fileSize, g.fileSize())
	}
	return g, nil
}

// mapping gives typed access to a mapped ring file.
type mapping struct {
	geometry
	mem      []byte // the whole file
	data     []byte // the data area
	dataMask uint64
	descMask uint64
}

func newMapping(mem []byte, g geometry) mapping {
	return mapping{
		geometry: g,
		mem:      mem,
		data:     mem[g.dataOffset : g.dataOffset+g.dataSize],
		dataMask: g.dataSize - 1,
		descMask: g.descCount - 1,
	}
}

func (m *mapping) word64(off uint64) *uint64 {
	return (*uint64)(unsafe.Pointer(&m.mem[off]))
}

func (m *mapping) word32(off uint64) *uint32 {
	return (*uint32)(unsafe.Pointer(&m.mem[off]))
}

func (m *mapping) load(off uint64) uint64 { return atomic.LoadUint64(m.word64(off)) }

func (m *mapping) descSeq(seq uint64) *uint64 {
	return m.word64(m.descOffset + (seq&m.descMask)*descSize)
}

func (m *mapping) descPos(seq uint64) *uint64 {
	return m.word64(m.descOffset + (seq&m.descMask)*descSize + 8)
}

func (m *mapping) loadDescSeq(seq uint64) uint64 { return atomic.LoadUint64(m.descSeq(seq)) }

func (m *mapping) futex() *uint32 { return m.word32(offFutex) }

// recordSize is the space a record with an n-byte payload occupies.
func recordSize(n int) uint64 {
	return (uint64(recHeaderSize+n) + recAlign - 1) &^ (recAlign - 1)
}

// recordCRC is the checksum stored in a record: CRC32C over the record from
// its len field to the end of its payload.
func recordCRC(rec []byte) uint32 {
	return crc32.Checksum(rec[4:], castagnoli())
}

// checkRecord validates the record for seq at logical position pos and
// returns its payload length. rec is a copy of (or the mapping of) the
// record's bytes starting at its header.
func checkRecord(rec []byte, seq uint64) (n int, ok bool) {
	if len(rec) < recHeaderSize {
		return 0, false
	}
	le := binary.LittleEndian
	n32 := le.Uint32(rec[4:])
	if n32 == padMarker || uint64(n32) > uint64(len(rec)-recHeaderSize) {
		return 0, false
	}
	n = int(n32)
	if le.Uint64(rec[8:]) != seq || le.Uint32(rec[0:]) != recordCRC(rec[:recHeaderSize+n]) {
		return 0, false
	}
	return n, true
}

func loadUint32(p *uint32) uint32 { return atomic.LoadUint32(p) }
