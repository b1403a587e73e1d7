package ingest

import (
	"time"
	"unicode/utf8"

	"github.com/collectord/collectord/pkg/record"
)

// Parser turns datagrams into entries. It holds reusable scratch state so
// that parsing allocates nothing per datagram once warmed up. The zero value
// is ready to use. A Parser is not safe for concurrent use: give each
// receiving goroutine its own.
type Parser struct {
	// Now returns the current time. It is used only to infer the year of an
	// RFC 3164 timestamp, which has none. Nil means time.Now.
	Now func() time.Time
	// Location is the time zone of RFC 3164 timestamps, which carry none.
	// Nil means time.Local.
	Location *time.Location

	// scratch holds bytes that do not appear verbatim in the datagram:
	// unescaped JSON and SD-PARAM values, "SDID.param" keys and field names
	// the parser supplies. It is truncated at the start of every Parse, so
	// entry slices that point into it are valid until the next Parse. It
	// keeps the largest size any datagram needed (at most a few times the
	// datagram's length).
	scratch []byte
}

// Parse detects the format of one datagram and fills e. It never fails:
// what it cannot parse is stored as record.FormatRaw, with
// record.FlagMalformed where a format was claimed but broken.
//
// e is reset first (every field, including PID, UID, GID and FlagCreds: set
// the sender credentials after Parse), and e.Fields' backing array is
// reused. The byte slices stored in e alias data or the Parser's scratch
// buffer: they stay valid while data is unchanged and until the next call
// of Parse on p. Copy them (or encode e with record.AppendEncode) to keep
// them longer. Slices are capped at their length, so appending to one
// never overwrites its neighbours.
func (p *Parser) Parse(data []byte, e *record.Entry) {
	e.Reset()
	p.scratch = p.scratch[:0]
	switch {
	case len(data) > 0 && data[0] == '<':
		p.parseSyslog(data, e)
	case len(data) > 0 && data[0] == '{':
		p.parseJSON(data, e)
	case isJournal(data):
		p.parseJournal(data, e)
	default:
		setRaw(data, e)
	}
	if !utf8.Valid(e.Message) {
		e.Flags |= record.FlagInvalidUTF8
	}
}

// setRaw stores the whole datagram as the message of an entry that claims
// no format, at the default priority.
func setRaw(data []byte, e *record.Entry) {
	e.Format = record.FormatRaw
	e.Priority = record.DefaultPriority
	e.Flags |= record.FlagDefaultPriority
	e.Message = capped(trimNewlines(data))
}

// parsePRI parses "<PRI>" at the start of b: 1 to 3 digits, no leading
// zero except "<0>", at most 191. It returns the priority and the length of
// the header, or ok=false if b does not start with a valid PRI.
func parsePRI(b []byte) (pri uint8, n int, ok bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, 0, false
	}
	v := 0
	i := 1
	for ; i < len(b) && i <= 4 && isDigit(b[i]); i++ {
		v = v*10 + int(b[i]-'0')
	}
	digits := i - 1
	if digits == 0 || digits > 3 || i >= len(b) || b[i] != '>' ||
		(digits > 1 && b[1] == '0') || v > 191 {
		return 0, 0, false
	}
	return uint8(v), i + 1, true
}

// trimNewlines removes trailing line terminators ('\n' and '\r').
func trimNewlines(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// capped returns b with its capacity limited to its length, so a caller
// appending to an entry's slice cannot overwrite the bytes that follow it.
func capped(b []byte) []byte { return b[:len(b):len(b)] }

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseDecimalU32 parses a canonical decimal number (digits only, no sign,
// no leading zero unless the number is 0) that fits in 32 bits.
func parseDecimalU32(b []byte) (uint32, bool) {
	if len(b) == 0 || len(b) > 10 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}

// appendScratch appends the concatenation of parts to p.scratch and returns
// the new bytes (capped). Earlier slices of scratch stay valid even if this
// reallocates: they keep pointing at the old array, which is no longer
// written.
func (p *Parser) appendScratch(a, b, c []byte) []byte {
	start := len(p.scratch)
	p.scratch = append(p.scratch, a...)
	p.scratch = append(p.scratch, b...)
	p.scratch = append(p.scratch, c...)
	return p.scratch[start:len(p.scratch):len(p.scratch)]
}

// appendScratchString is appendScratch for a constant name.
func (p *Parser) appendScratchString(s string) []byte {
	start := len(p.scratch)
	p.scratch = append(p.scratch, s...)
	return p.scratch[start:len(p.scratch):len(p.scratch)]
}

func (p *Parser) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Parser) location() *time.Location {
	if p.Location != nil {
		return p.Location
	}
	return time.Local
}
