package query

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Version is the protocol version this package speaks.
const Version = 1

// Frame size limits. A frame's length counts its type byte and its body.
const (
	// MaxClientFrame is the longest frame a client may send.
	MaxClientFrame = 64 << 10
	// MaxServerFrame is the longest frame a server may send.
	MaxServerFrame = 16 << 20
)

// frameHeaderSize is the u32 length and the type byte.
const frameHeaderSize = 5

// FrameType is the type byte of a frame.
type FrameType byte

// The frame types of protocol version 1 (see docs/PROTOCOL.md).
const (
	FrameHello   FrameType = 'H' // client: hello (JSON Hello)
	FrameWelcome FrameType = 'h' // server: hello accepted (JSON HelloReply)
	FrameQuery   FrameType = 'Q' // client: query (JSON Request)
	FrameCancel  FrameType = 'C' // client: cancel the running query (empty)
	FrameBatch   FrameType = 'B' // server: records (binary, see ParseBatch)
	FrameLost    FrameType = 'L' // server: records lost (binary, see ParseLost)
	FramePing    FrameType = 'P' // server: keep-alive during a quiet follow (empty)
	FrameEnd     FrameType = 'E' // server: end of a response (JSON End)
	FrameError   FrameType = 'X' // server: error (JSON Error)
	// FrameStats asks for the daemon's figures (empty); a server whose
	// hello reply says stats answers it with FrameFigures.
	FrameStats   FrameType = 'S' // client: stats request (empty)
	FrameFigures FrameType = 's' // server: the figures (JSON StatsReply)
)

// String returns the type byte as a character, or in hex when it is not a
// printable ASCII character.
func (t FrameType) String() string {
	if t > ' ' && t < 0x7f {
		return string(rune(t))
	}
	return "0x" + strconv.FormatUint(uint64(t), 16)
}

// ErrProtocol means the peer sent something protocol version 1 does not
// allow: an oversized or empty frame, an unexpected frame type, or a body
// that does not parse. Errors wrapping it carry the detail.
var ErrProtocol = errors.New("query protocol violation")

// ErrFrameTooLarge means a frame's length exceeds the reader's limit. Errors
// wrapping it also wrap ErrProtocol.
var ErrFrameTooLarge = errors.New("frame too large")

// protocolErrorf returns an error wrapping ErrProtocol.
func protocolErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// AppendFrame appends one frame (length, type, body) to dst and returns the
// extended slice. It does not check the body's size against a limit.
func AppendFrame(dst []byte, t FrameType, body []byte) []byte {
	hdr := frameHeader(t, len(body))
	dst = append(dst, hdr[:]...)
	return append(dst, body...)
}

// frameHeader encodes the header of a frame of type t whose body is
// bodyLen bytes long: the u32 length, which counts the type byte, then the
// type. Every frame this package writes gets its header here.
func frameHeader(t FrameType, bodyLen int) [frameHeaderSize]byte {
	var hdr [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(bodyLen+1))
	hdr[4] = byte(t)
	return hdr
}

// FrameReader reads frames from a byte stream. It is used by one goroutine.
type FrameReader struct {
	r   io.Reader
	max int
	hdr [4]byte
	buf []byte
}

// NewFrameReader returns a FrameReader that refuses frames whose length
// (type byte and body) exceeds maxLen: MaxClientFrame on a server,
// MaxServerFrame on a client. It reads the stream in small pieces; give it
// a buffered reader.
func NewFrameReader(r io.Reader, maxLen int) *FrameReader {
	return &FrameReader{r: r, max: maxLen}
}

// Next reads the next frame. The body aliases a buffer owned by the
// FrameReader and is valid until the next call.
//
// err is io.EOF when the stream ended cleanly between frames,
// io.ErrUnexpectedEOF when it ended inside one, an error wrapping
// ErrFrameTooLarge and ErrProtocol for a frame over the limit, an error
// wrapping ErrProtocol for an empty frame (no type byte), or the stream's
// own error. Next does not judge the type: the caller knows which types its
// side may receive.
//
// The buffer grows with the bytes actually received, so a peer that
// announces a long frame and sends nothing does not make it allocate.
func (fr *FrameReader) Next() (t FrameType, body []byte, err error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(fr.hdr[:])
	if n == 0 {
		return 0, nil, protocolErrorf("empty frame")
	}
	if uint64(n) > uint64(fr.max) {
		return 0, nil, fmt.Errorf("%w: %w: %d bytes, limit %d", ErrProtocol, ErrFrameTooLarge, n, fr.max)
	}
	need := int(n)
	b := fr.buf[:0]
	for len(b) < need {
		chunk := min(need-len(b), max(len(b), 64<<10))
		if cap(b)-len(b) < chunk {
			nb := make([]byte, len(b), len(b)+chunk)
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(fr.r, b[len(b):len(b)+chunk])
		b = b[:len(b)+m]
		if err != nil {
			fr.buf = b[:0]
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, nil, err
		}
	}
	fr.buf = b[:0]
	return FrameType(b[0]), b[1:need], nil
}

// Record is one record of a response: its sequence number (the cursor to
// resume after it), the time the daemon received it (Unix nanoseconds) and
// its payload, an entry in the encoding of package record.
//
// Records handed to a Handler alias memory owned by whoever calls the
// handler (a batch buffer, a ring cursor): Payload is valid only during the
// call. Copy it to keep it.
type Record struct {
	Seq     uint64
	Time    int64
	Payload []byte
}

// batchRecordHeader is a batch record's seq, time and length.
const batchRecordHeader = 8 + 8 + 4

// batchFrameHeader is the frame header plus the batch's record count.
const batchFrameHeader = frameHeaderSize + 4

// maxBatchPayload is the longest payload a B frame can carry alone.
const maxBatchPayload = MaxServerFrame - 1 - 4 - batchRecordHeader

// Batch is the parsed body of a B frame. Its records alias the body.
type Batch struct {
	rest []byte
	n    int
}

// ParseBatch validates the body of a B frame and returns its records. It
// checks the whole body before returning: the count matches the records,
// every length fits, sequence numbers are at least 1 and strictly increase,
// and nothing follows the last record. An error wraps ErrProtocol.
func ParseBatch(body []byte) (Batch, error) {
	if len(body) < 4 {
		return Batch{}, protocolErrorf("batch of %d bytes has no count", len(body))
	}
	count := binary.LittleEndian.Uint32(body)
	rest := body[4:]
	if uint64(count) > uint64(len(rest))/batchRecordHeader {
		return Batch{}, protocolErrorf("batch count %d does not fit in %d bytes", count, len(rest))
	}
	p := rest
	var prev uint64
	for i := range int(count) {
		if len(p) < batchRecordHeader {
			return Batch{}, protocolErrorf("batch record %d truncated", i)
		}
		seq := binary.LittleEndian.Uint64(p)
		n := binary.LittleEndian.Uint32(p[16:])
		if seq <= prev {
			return Batch{}, protocolErrorf("batch record %d has seq %d after %d", i, seq, prev)
		}
		if uint64(n) > uint64(len(p)-batchRecordHeader) {
			return Batch{}, protocolErrorf("batch record %d length %d exceeds the %d bytes left", i, n, len(p)-batchRecordHeader)
		}
		p = p[batchRecordHeader+int(n):]
		prev = seq
	}
	if len(p) != 0 {
		return Batch{}, protocolErrorf("%d bytes after the last batch record", len(p))
	}
	return Batch{rest: rest, n: int(count)}, nil
}

// Len returns how many records Next has yet to return.
func (b *Batch) Len() int { return b.n }

// Next returns the next record, or false when there are no more. The
// payload aliases the body given to ParseBatch.
func (b *Batch) Next() (Record, bool) {
	if b.n == 0 {
		return Record{}, false
	}
	p := b.rest
	n := int(binary.LittleEndian.Uint32(p[16:]))
	r := Record{
		Seq:     binary.LittleEndian.Uint64(p),
		Time:    int64(binary.LittleEndian.Uint64(p[8:])),
		Payload: p[batchRecordHeader : batchRecordHeader+n : batchRecordHeader+n],
	}
	b.rest = p[batchRecordHeader+n:]
	b.n--
	return r, true
}

// batchWriter builds one B frame in place: the frame header and record
// count are written when the frame is finished. It never allocates once its
// buffer has grown to the largest frame built.
type batchWriter struct {
	buf []byte
	n   uint32
}

// reset starts a new frame, keeping the buffer.
func (b *batchWriter) reset() {
	if cap(b.buf) < batchFrameHeader {
		b.buf = make([]byte, 0, 4<<10) // grows by append up to the largest batch
	}
	b.buf = b.buf[:batchFrameHeader]
	b.n = 0
}

// add appends one record.
func (b *batchWriter) add(r Record) {
	if len(b.buf) == 0 {
		b.reset()
	}
	b.buf = binary.LittleEndian.AppendUint64(b.buf, r.Seq)
	b.buf = binary.LittleEndian.AppendUint64(b.buf, uint64(r.Time))
	b.buf = binary.LittleEndian.AppendUint32(b.buf, uint32(len(r.Payload)))
	b.buf = append(b.buf, r.Payload...)
	b.n++
}

// size returns the frame's length in bytes so far, header included.
func (b *batchWriter) size() int { return max(len(b.buf), batchFrameHeader) }

// frame completes the header and returns the whole frame, which aliases
// the writer's buffer until the next reset.
func (b *batchWriter) frame() []byte {
	if len(b.buf) == 0 {
		b.reset()
	}
	hdr := frameHeader(FrameBatch, len(b.buf)-frameHeaderSize)
	copy(b.buf, hdr[:])
	binary.LittleEndian.PutUint32(b.buf[frameHeaderSize:], b.n)
	return b.buf
}

// lostBodySize is the length of an L frame's body.
const lostBodySize = 16

// AppendLost appends the body of an L frame to dst.
func AppendLost(dst []byte, lost, next uint64) []byte {
	body := lostBody(lost, next)
	return append(dst, body[:]...)
}

// lostBody encodes the body of an L frame: how many records were lost,
// then the sequence number the stream continues from.
func lostBody(lost, next uint64) [lostBodySize]byte {
	var body [lostBodySize]byte
	binary.LittleEndian.PutUint64(body[:], lost)
	binary.LittleEndian.PutUint64(body[8:], next)
	return body
}

// ParseLost parses the body of an L frame: how many records were lost and
// the sequence number the stream continues from. next must be at least 1;
// lost is 0 when the server does not say how many (a query over one
// user's records: see Access). An error wraps ErrProtocol.
func ParseLost(body []byte) (lost, next uint64, err error) {
	if len(body) != lostBodySize {
		return 0, 0, protocolErrorf("lost frame body of %d bytes, want %d", len(body), lostBodySize)
	}
	lost = binary.LittleEndian.Uint64(body)
	next = binary.LittleEndian.Uint64(body[8:])
	if next == 0 {
		return 0, 0, protocolErrorf("lost frame with lost %d, next %d", lost, next)
	}
	return lost, next, nil
}
