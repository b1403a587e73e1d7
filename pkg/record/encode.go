package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Version is the newest encoding version: AppendEncode writes it for an
// entry with Origin fields, and VersionNoOrigin (whose layout is the same
// up to the structured fields, where it ends) for one without, so that
// records without origin fields stay readable by version 1 readers.
const Version = 2

// VersionNoOrigin is the encoding version of an entry without Origin
// fields, the only version before origin fields existed.
const VersionNoOrigin = 1

// headerSize is the fixed part of an encoding (both versions): version, format,
// flags, priority, PID, UID, GID, ClaimedPID, SourceTime.
const headerSize = 1 + 1 + 2 + 1 + 4*4 + 8

// ErrCorrupt is returned (wrapped, with detail) by Decode when its input is
// not one complete, canonical encoding of a supported version.
var ErrCorrupt = errors.New("corrupt record")

// EncodedLen returns the number of bytes AppendEncode appends for e.
func EncodedLen(e *Entry) int {
	n := headerSize + bytesLen(e.Hostname) + bytesLen(e.Tag) + bytesLen(e.MsgID) + bytesLen(e.Message)
	n += uvarintLen(uint64(len(e.Fields)))
	for i := range e.Fields {
		n += bytesLen(e.Fields[i].Key) + bytesLen(e.Fields[i].Value)
	}
	if !e.Origin.IsZero() {
		for _, f := range e.Origin.fields() {
			n += bytesLen(*f)
		}
	}
	return n
}

// AppendEncode appends the encoding of e (version 2 when e has Origin
// fields, else version 1) to dst and returns the
// extended slice. It does not allocate when cap(dst)-len(dst) is at least
// EncodedLen(e). See the package documentation for the layout.
func AppendEncode(dst []byte, e *Entry) []byte {
	dst = slices.Grow(dst, EncodedLen(e))
	origin := !e.Origin.IsZero()
	version := byte(VersionNoOrigin)
	if origin {
		version = Version
	}
	dst = append(dst, version, byte(e.Format))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(e.Flags))
	dst = append(dst, e.Priority)
	dst = binary.LittleEndian.AppendUint32(dst, e.PID)
	dst = binary.LittleEndian.AppendUint32(dst, e.UID)
	dst = binary.LittleEndian.AppendUint32(dst, e.GID)
	dst = binary.LittleEndian.AppendUint32(dst, e.ClaimedPID)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(e.SourceTime))
	dst = appendBytes(dst, e.Hostname)
	dst = appendBytes(dst, e.Tag)
	dst = appendBytes(dst, e.MsgID)
	dst = appendBytes(dst, e.Message)
	dst = binary.AppendUvarint(dst, uint64(len(e.Fields)))
	for i := range e.Fields {
		dst = appendBytes(dst, e.Fields[i].Key)
		dst = appendBytes(dst, e.Fields[i].Value)
	}
	if origin {
		for _, f := range e.Origin.fields() {
			dst = appendBytes(dst, *f)
		}
	}
	return dst
}

// Decode decodes one encoding, exactly b, into e. Every field of e is
// overwritten. Byte slices in e alias b (empty ones are nil), so b must
// stay unchanged for as long as e is used. e.Fields' backing array is
// reused: Decode allocates only when it is too small for the fields in b.
//
// Decode never panics. On error, which wraps ErrCorrupt, e holds whatever
// was decoded before the problem and must not be used.
func Decode(b []byte, e *Entry) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", ErrCorrupt)
	}
	if b[0] != VersionNoOrigin && b[0] != Version {
		return fmt.Errorf("%w: unknown version %d", ErrCorrupt, b[0])
	}
	if len(b) < headerSize {
		return fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrCorrupt, len(b), headerSize)
	}
	e.Format = Format(b[1])
	e.Flags = Flags(binary.LittleEndian.Uint16(b[2:]))
	e.Priority = b[4]
	e.PID = binary.LittleEndian.Uint32(b[5:])
	e.UID = binary.LittleEndian.Uint32(b[9:])
	e.GID = binary.LittleEndian.Uint32(b[13:])
	e.ClaimedPID = binary.LittleEndian.Uint32(b[17:])
	e.SourceTime = int64(binary.LittleEndian.Uint64(b[21:]))
	e.Fields = e.Fields[:0]
	e.Origin = Origin{}

	d := decoder{b: b, off: headerSize}
	e.Hostname = d.bytes("hostname")
	e.Tag = d.bytes("tag")
	e.MsgID = d.bytes("msgid")
	e.Message = d.bytes("message")
	n := d.uvarint("field count")
	if d.err == nil && n > uint64(len(b)-d.off)/2 {
		// Each field takes at least two bytes (two zero lengths), so a
		// larger count is a lie; checking it first bounds the allocation.
		d.fail("field count %d exceeds the %d remaining bytes", n, len(b)-d.off)
	}
	if d.err != nil {
		return d.err
	}
	e.Fields = slices.Grow(e.Fields, int(n))
	for i := uint64(0); i < n; i++ {
		k := d.bytes("field key")
		v := d.bytes("field value")
		if d.err != nil {
			return d.err
		}
		e.Fields = append(e.Fields, Field{Key: k, Value: v})
	}
	if b[0] == Version {
		for _, f := range e.Origin.fields() {
			*f = d.bytes("origin field")
		}
		if d.err != nil {
			return d.err
		}
		if e.Origin.IsZero() {
			return fmt.Errorf("%w: version %d without origin fields (non-canonical)", ErrCorrupt, Version)
		}
	}
	if d.off != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(b)-d.off)
	}
	return nil
}

// PeekUID returns the trusted sender uid of the encoding b without decoding
// the rest: it reads only the fixed header, so it takes constant time and
// does not allocate, for a reader that must skip records that are not
// some user's. ok is true when b starts with a complete header of a known version
// whose Flags have FlagCreds; uid is then the UID that Decode would
// return. ok is false, with uid 0, when the entry has no kernel
// credentials or b is too short or of another version. PeekUID does not
// check the variable part: Decode may still fail on a b it accepts.
func PeekUID(b []byte) (uid uint32, ok bool) {
	if len(b) < headerSize || (b[0] != VersionNoOrigin && b[0] != Version) || Flags(binary.LittleEndian.Uint16(b[2:]))&FlagCreds == 0 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[9:]), true
}

// decoder reads length-prefixed items from b; after the first error every
// read returns zero values and err keeps the first error.
type decoder struct {
	b   []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at offset %d: %s", ErrCorrupt, d.off, fmt.Sprintf(format, args...))
	}
}

// uvarint reads a canonical (minimal-length) uvarint.
func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b[d.off:])
	switch {
	case n == 0:
		d.fail("%s: truncated length", what)
		return 0
	case n < 0:
		d.fail("%s: length overflows 64 bits", what)
		return 0
	case n > 1 && d.b[d.off+n-1] == 0:
		d.fail("%s: non-minimal length encoding", what)
		return 0
	}
	d.off += n
	return v
}

// bytes reads a uvarint length and that many bytes, returned aliasing d.b
// (nil when empty).
func (d *decoder) bytes(what string) []byte {
	l := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if l > uint64(len(d.b)-d.off) {
		d.fail("%s: length %d exceeds the %d remaining bytes", what, l, len(d.b)-d.off)
		return nil
	}
	if l == 0 {
		return nil
	}
	s := d.b[d.off : d.off+int(l) : d.off+int(l)]
	d.off += int(l)
	return s
}

func appendBytes(dst, s []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func bytesLen(s []byte) int { return uvarintLen(uint64(len(s))) + len(s) }

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}
