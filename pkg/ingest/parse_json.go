package ingest

import (
	"math"
	"unicode/utf8"

	"github.com/collectord/collectord/pkg/record"
)

// maxJSONDepth bounds the nesting of objects and arrays in a JSON datagram
// (the top-level object is level 1). Deeper input is treated as malformed.
const maxJSONDepth = 64

// parseJSON parses a datagram starting with '{'. On any syntax error the
// datagram is stored whole as a malformed raw entry.
func (p *Parser) parseJSON(data []byte, e *record.Entry) {
	if !p.parseJSONObject(data, e) {
		e.Reset()
		p.scratch = p.scratch[:0]
		setRaw(data, e)
		e.Flags |= record.FlagMalformed
	}
}

// jsonSeen records which entry fields a JSON key has already filled; later
// keys for the same entry field are kept as Fields.
type jsonSeen uint8

const (
	seenMsg jsonSeen = 1 << iota
	seenLevel
	seenTime
	seenTag
	seenPID
	seenHost
)

func (p *Parser) parseJSONObject(data []byte, e *record.Entry) bool {
	e.Format = record.FormatJSON
	s := jsonScanner{b: data, pos: 1, p: p}
	var seen jsonSeen
	s.ws()
	if !s.eat('}') {
		for {
			s.ws()
			key, ok := s.str()
			if !ok {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
			kind := s.peek()
			var val []byte
			if kind == '"' {
				val, ok = s.str()
			} else {
				start := s.pos
				ok = s.value(1)
				val = capped(data[start:s.pos])
			}
			if !ok {
				return false
			}
			if !mapJSON(key, kind, val, e, &seen) {
				e.Fields = append(e.Fields, record.Field{Key: key, Value: val})
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return false
		}
	}
	s.ws()
	if s.pos != len(data) {
		return false
	}
	if seen&seenLevel == 0 {
		e.Priority = record.DefaultPriority
		e.Flags |= record.FlagDefaultPriority
	}
	return true
}

// mapJSON stores a top-level member in the entry field it names and
// reports whether it did. kind is the value's first byte ('"' for a string,
// whose val is unescaped; otherwise val is the raw JSON text).
func mapJSON(key []byte, kind byte, val []byte, e *record.Entry, seen *jsonSeen) bool {
	isString := kind == '"'
	isNumber := kind == '-' || isDigit(kind)
	switch string(key) {
	case "msg", "message":
		if isString && *seen&seenMsg == 0 {
			e.Message = val
			*seen |= seenMsg
			return true
		}
	case "level", "severity", "lvl":
		if *seen&seenLevel == 0 && (isString || isNumber) {
			if sev, ok := parseLevel(val); ok {
				e.Priority = 1<<3 | sev // facility user
				*seen |= seenLevel
				return true
			}
		}
	case "time", "timestamp", "ts", "@timestamp":
		if *seen&seenTime != 0 {
			return false
		}
		var ts int64
		ok := false
		if isString {
			var n int
			ts, n, ok = parseRFC3339(val)
			ok = ok && n == len(val)
		} else if isNumber {
			ts, ok = parseEpoch(val)
		}
		if ok {
			e.SourceTime = ts
			*seen |= seenTime
			return true
		}
	case "app", "tag", "ident", "logger":
		if isString && *seen&seenTag == 0 {
			e.Tag = val
			*seen |= seenTag
			return true
		}
	case "pid":
		if pid, ok := parseDecimalU32(val); ok && isNumber && pid != 0 && *seen&seenPID == 0 {
			e.ClaimedPID = pid
			*seen |= seenPID
			return true
		}
	case "hostname", "host":
		if isString && *seen&seenHost == 0 {
			e.Hostname = val
			*seen |= seenHost
			return true
		}
	}
	return false
}

// parseLevel maps a level name (any case) or number to a syslog severity:
// syslog numbers 0..7 and names, the usual logging-library names, and
// pino/bunyan numbers (10 trace, 20 debug, 30 info, 40 warn, 50 error,
// 60 fatal).
func parseLevel(v []byte) (uint8, bool) {
	if n, ok := parseDecimalU32(v); ok {
		switch {
		case n <= 7:
			return uint8(n), true
		case n == 10, n == 20:
			return 7, true
		case n == 30:
			return 6, true
		case n == 40:
			return 4, true
		case n == 50:
			return 3, true
		case n == 60:
			return 2, true
		}
		return 0, false
	}
	var lower [len("informational")]byte
	if len(v) > len(lower) {
		return 0, false
	}
	for i, c := range v {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower[:len(v)]) {
	case "emerg", "emergency", "panic":
		return 0, true
	case "alert":
		return 1, true
	case "crit", "critical", "fatal", "dpanic":
		return 2, true
	case "err", "error":
		return 3, true
	case "warn", "warning":
		return 4, true
	case "notice":
		return 5, true
	case "info", "information", "informational":
		return 6, true
	case "debug", "trace":
		return 7, true
	}
	return 0, false
}

// parseEpoch converts a JSON number of Unix time to nanoseconds. The unit
// follows from the magnitude of the integer part: below 1e11 seconds, below
// 1e14 milliseconds, below 1e17 microseconds, else nanoseconds (so every
// unit covers 1973..5138 or to the int64 limit). A fraction is honoured to
// the nanosecond. Negative numbers, exponents and values beyond the int64
// nanosecond range are not accepted.
func parseEpoch(v []byte) (int64, bool) {
	i := 0
	var ip uint64
	for i < len(v) && isDigit(v[i]) {
		if i >= 19 {
			return 0, false
		}
		ip = ip*10 + uint64(v[i]-'0')
		i++
	}
	if i == 0 {
		return 0, false
	}
	var frac uint64 // fraction of one unit, in units of 1e-9
	if i < len(v) && v[i] == '.' {
		i++
		scale := uint64(100_000_000)
		for ; i < len(v) && isDigit(v[i]); i++ {
			frac += uint64(v[i]-'0') * scale
			scale /= 10
		}
	}
	if i != len(v) {
		return 0, false // exponent
	}
	var unit uint64
	switch {
	case ip < 1e11:
		unit = 1e9
	case ip < 1e14:
		unit = 1e6
	case ip < 1e17:
		unit = 1e3
	default:
		unit = 1
	}
	sub := frac * unit / 1e9 // < unit; no overflow: frac < 1e9, unit <= 1e9
	if ip > math.MaxInt64/unit || ip*unit > math.MaxInt64-sub {
		return 0, false
	}
	return int64(ip*unit + sub), true
}

// jsonScanner validates and slices JSON text without allocating. Strings
// without escapes alias the input; others are unescaped into the Parser's
// scratch buffer.
type jsonScanner struct {
	b   []byte
	pos int
	p   *Parser
}

func (s *jsonScanner) peek() byte {
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

func (s *jsonScanner) eat(c byte) bool {
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

func (s *jsonScanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value skips one JSON value at s.pos that sits inside depth levels of
// containers, validating it.
func (s *jsonScanner) value(depth int) bool {
	switch c := s.peek(); {
	case c == '"':
		_, _, ok := s.skipStr()
		return ok
	case c == '{' || c == '[':
		if depth >= maxJSONDepth {
			return false
		}
		s.pos++
		s.ws()
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		if s.eat(end) {
			return true
		}
		for {
			s.ws()
			if c == '{' {
				if _, _, ok := s.skipStr(); !ok {
					return false
				}
				s.ws()
				if !s.eat(':') {
					return false
				}
				s.ws()
			}
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			return s.eat(end)
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || isDigit(c):
		return s.number()
	}
	return false
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.pos >= len(lit) && string(s.b[s.pos:s.pos+len(lit)]) == lit {
		s.pos += len(lit)
		return true
	}
	return false
}

// number skips -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case isDigit(s.peek()):
		s.digits()
	default:
		return false
	}
	if s.eat('.') && !s.digits() {
		return false
	}
	if s.eat('e') || s.eat('E') {
		if !s.eat('+') {
			s.eat('-')
		}
		if !s.digits() {
			return false
		}
	}
	return true
}

func (s *jsonScanner) digits() bool {
	start := s.pos
	for s.pos < len(s.b) && isDigit(s.b[s.pos]) {
		s.pos++
	}
	return s.pos > start
}

// skipStr validates the string at s.pos and moves past it. It returns the
// bytes between the quotes (escapes not decoded) and whether any escape
// occurred. Control characters must be escaped; other bytes, including
// invalid UTF-8, are accepted as sent.
func (s *jsonScanner) skipStr() (raw []byte, escaped, ok bool) {
	if !s.eat('"') {
		return nil, false, false
	}
	start := s.pos
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			raw = s.b[start:s.pos:s.pos]
			s.pos++
			return raw, escaped, true
		case c < 0x20:
			return nil, false, false
		case c == '\\':
			escaped = true
			if s.pos+1 >= len(s.b) {
				return nil, false, false
			}
			switch s.b[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if _, ok := hex4(s.b[s.pos+2:]); !ok {
					return nil, false, false
				}
				s.pos += 6
			default:
				return nil, false, false
			}
		default:
			s.pos++
		}
	}
	return nil, false, false
}

// str reads a string and returns its decoded value.
func (s *jsonScanner) str() ([]byte, bool) {
	raw, escaped, ok := s.skipStr()
	if !ok || !escaped {
		return raw, ok
	}
	return s.p.unescapeJSON(raw), true
}

// unescapeJSON decodes the escapes of a string skipStr validated into
// scratch. Unpaired surrogates become U+FFFD, as encoding/json does.
func (p *Parser) unescapeJSON(raw []byte) []byte {
	start := len(p.scratch)
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			p.scratch = append(p.scratch, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r, _ := hex4(raw[i+1:])
			i += 4
			if 0xD800 <= r && r < 0xDC00 && i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
				if r2, _ := hex4(raw[i+3:]); 0xDC00 <= r2 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 6
				}
			}
			if 0xD800 <= r && r < 0xE000 {
				r = utf8.RuneError
			}
			p.scratch = utf8.AppendRune(p.scratch, r)
			continue
		default: // '"', '\\', '/'
			c = raw[i]
		}
		p.scratch = append(p.scratch, c)
	}
	return p.scratch[start:len(p.scratch):len(p.scratch)]
}

// hex4 parses four hex digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case isDigit(c):
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
