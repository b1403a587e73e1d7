package ingest

import (
	"bytes"
	"time"

	"github.com/collectord/collectord/pkg/record"
)

// parseSyslog handles a datagram starting with '<': RFC 5424, RFC 3164
// (with or without timestamp), Python's SysLogHandler, or a bare PRI
// followed by free text. See doc.go for the order of the checks.
func (p *Parser) parseSyslog(data []byte, e *record.Entry) {
	pri, n, ok := parsePRI(data)
	if !ok {
		setRaw(data, e)
		return
	}
	body := data[n:]
	e.Priority = pri

	claims5424 := len(body) >= 2 && body[0] == '1' && body[1] == ' '
	if claims5424 {
		if p.parse5424(body[2:], e) {
			e.Format = record.FormatRFC5424
			return
		}
		// Undo what the broken header filled in.
		e.Reset()
		p.scratch = p.scratch[:0]
		e.Priority = pri
	}
	text := trimNewlines(body)
	if p.parse3164Stamped(text, e) {
		e.Format = record.FormatRFC3164
		return
	}
	if len(body) > 0 && body[len(body)-1] == 0 {
		e.Format = record.FormatPython
		e.Message = capped(trimNewlines(body[:len(body)-1]))
		return
	}
	if tag, pid, msg, ok := parseTag(text); ok {
		e.Format = record.FormatRFC3164
		e.Tag, e.ClaimedPID, e.Message = tag, pid, msg
		return
	}
	e.Format = record.FormatRaw
	e.Message = capped(text)
	if claims5424 {
		e.Flags |= record.FlagMalformed
	}
}

// parse3164Stamped parses "TIMESTAMP [HOST ]TAG[PID]: MSG" where TIMESTAMP
// is "Mmm dd hh:mm:ss" (local time, year inferred) or an RFC 3339 timestamp
// (as rsyslog's high-precision templates send). It fails only if there is
// no timestamp; whatever follows the timestamp is accepted.
func (p *Parser) parse3164Stamped(b []byte, e *record.Entry) bool {
	ts, n, ok := p.parseStamp(b)
	if !ok {
		ts, n, ok = parseRFC3339(b)
	}
	if !ok || (n < len(b) && b[n] != ' ') {
		return false
	}
	e.SourceTime = ts
	if n < len(b) {
		n++
	}
	b = b[n:]
	if tag, pid, msg, ok := parseTag(b); ok {
		e.Tag, e.ClaimedPID, e.Message = tag, pid, msg
		return true
	}
	if sp := bytes.IndexByte(b, ' '); sp > 0 && isHostname(b[:sp]) {
		if tag, pid, msg, ok := parseTag(b[sp+1:]); ok {
			e.Hostname = capped(b[:sp])
			e.Tag, e.ClaimedPID, e.Message = tag, pid, msg
			return true
		}
	}
	e.Message = capped(b)
	return true
}

// maxTagLen bounds an RFC 3164 tag. The RFC says 32; real programs use
// longer names, but a longer run without a space is more likely text.
const maxTagLen = 128

// parseTag parses "TAG: MSG" or "TAG[PID]: MSG" at the start of b. The
// colon must be followed by a space or the end of b. TAG is 1..maxTagLen
// printable ASCII characters other than ':', '[' and ']'; PID is 1..10
// digits fitting in 32 bits. If b does not have that shape, ok is false.
func parseTag(b []byte) (tag []byte, pid uint32, msg []byte, ok bool) {
	i := 0
	for i < len(b) && i <= maxTagLen && isTagChar(b[i]) {
		i++
	}
	if i == 0 || i > maxTagLen || i == len(b) {
		return nil, 0, nil, false
	}
	tag = b[:i]
	rest := b[i:]
	if rest[0] == '[' {
		j := 1
		var v uint64
		for j < len(rest) && j <= 11 && isDigit(rest[j]) {
			v = v*10 + uint64(rest[j]-'0')
			j++
		}
		if j == 1 || j > 11 || v > 1<<32-1 || j >= len(rest) || rest[j] != ']' {
			return nil, 0, nil, false
		}
		pid = uint32(v)
		rest = rest[j+1:]
		if len(rest) == 0 {
			return nil, 0, nil, false
		}
	}
	if rest[0] != ':' || (len(rest) > 1 && rest[1] != ' ') {
		return nil, 0, nil, false
	}
	rest = rest[1:]
	if len(rest) > 0 {
		rest = rest[1:]
	}
	return capped(tag), pid, capped(rest), true
}

func isTagChar(c byte) bool {
	return c > ' ' && c < 0x7f && c != ':' && c != '[' && c != ']'
}

// isHostname accepts what may stand in an RFC 3164 HOSTNAME position: a
// name or an IPv4/IPv6 address, 1..255 bytes.
func isHostname(b []byte) bool {
	if len(b) == 0 || len(b) > 255 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', isDigit(c):
		case c == '-', c == '.', c == '_', c == ':', c == '%':
		default:
			return false
		}
	}
	return true
}

// months maps the RFC 3164 month abbreviations.
const months = "JanFebMarAprMayJunJulAugSepOctNovDec"

// parseStamp parses an RFC 3164 "Mmm dd hh:mm:ss" timestamp at the start of
// b (the day may also be written "d" or "0d"). The year is the one that puts
// the time closest to p.now(); the zone is p.location(). It returns Unix
// nanoseconds and the length parsed.
func (p *Parser) parseStamp(b []byte) (ts int64, n int, ok bool) {
	if len(b) < 14 || b[3] != ' ' {
		return 0, 0, false
	}
	mon := 0
	for i := 0; i < len(months); i += 3 {
		if b[0] == months[i] && b[1] == months[i+1] && b[2] == months[i+2] {
			mon = i/3 + 1
			break
		}
	}
	if mon == 0 {
		return 0, 0, false
	}
	i := 4
	if b[i] == ' ' { // "Aug  2"
		i++
	}
	day := 0
	start := i
	for i < len(b) && i < start+2 && isDigit(b[i]) {
		day = day*10 + int(b[i]-'0')
		i++
	}
	if i == start || day < 1 || day > 31 {
		return 0, 0, false
	}
	if len(b) < i+9 || b[i] != ' ' {
		return 0, 0, false
	}
	hh, ok1 := twoDigits(b[i+1:], 23)
	mm, ok2 := twoDigits(b[i+4:], 59)
	ss, ok3 := twoDigits(b[i+7:], 60)
	if !ok1 || !ok2 || !ok3 || b[i+3] != ':' || b[i+6] != ':' {
		return 0, 0, false
	}
	n = i + 9

	// The candidate in the current year is the closest unless it is more
	// than half a year away; only then are the neighbours (or, for Feb 29,
	// the nearest leap years) tried. This keeps the common case to one
	// time.Date call.
	now := p.now().UnixNano()
	loc := p.location()
	year := time.Unix(0, now).In(loc).Year()
	best, bestDist := int64(0), int64(-1)
	try := func(y int) {
		if day > daysIn(mon, y) {
			return // Feb 30, Feb 29 in a common year, ...
		}
		t := time.Date(y, time.Month(mon), day, hh, mm, ss, 0, loc).UnixNano()
		d := t - now
		if d < 0 {
			d = -d
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = t, d
		}
	}
	try(year)
	if bestDist < 0 || bestDist > int64(182*24*time.Hour) {
		lo, hi := year-1, year+1
		if mon == 2 && day == 29 {
			lo, hi = year-4, year+4
		}
		for y := lo; y <= hi; y++ {
			if y != year {
				try(y)
			}
		}
	}
	if bestDist < 0 {
		return 0, 0, false
	}
	return best, n, true
}

// twoDigits parses exactly two decimal digits at the start of b, at most max.
func twoDigits(b []byte, max int) (int, bool) {
	if len(b) < 2 || !isDigit(b[0]) || !isDigit(b[1]) {
		return 0, false
	}
	v := int(b[0]-'0')*10 + int(b[1]-'0')
	return v, v <= max
}

// parseRFC3339 parses "YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm)" at the
// start of b, as RFC 5424 requires ('t', 'z' and a space for 'T' are also
// accepted; frac has 1..9 digits). Years outside 1678..2261 are rejected:
// they do not fit in int64 Unix nanoseconds. It returns Unix nanoseconds
// and the length parsed.
func parseRFC3339(b []byte) (ts int64, n int, ok bool) {
	if len(b) < 20 {
		return 0, 0, false
	}
	y1, ok1 := twoDigits(b, 99)
	y2, ok2 := twoDigits(b[2:], 99)
	mo, ok3 := twoDigits(b[5:], 12)
	d, ok4 := twoDigits(b[8:], 31)
	hh, ok5 := twoDigits(b[11:], 23)
	mm, ok6 := twoDigits(b[14:], 59)
	ss, ok7 := twoDigits(b[17:], 60)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 ||
		b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't' && b[10] != ' ') ||
		b[13] != ':' || b[16] != ':' || mo < 1 || d < 1 {
		return 0, 0, false
	}
	year := y1*100 + y2
	if year < 1678 || year > 2261 {
		return 0, 0, false
	}
	i := 19
	nsec := 0
	if b[i] == '.' {
		i++
		start := i
		scale := 100_000_000
		for i < len(b) && isDigit(b[i]) && i-start < 9 {
			nsec += int(b[i]-'0') * scale
			scale /= 10
			i++
		}
		if i == start {
			return 0, 0, false
		}
	}
	if i >= len(b) {
		return 0, 0, false
	}
	offset := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		oh, okh := twoDigits(b[i+1:], 23)
		om, okm := twoDigits(b[min(i+4, len(b)):], 59)
		if !okh || !okm || b[i+3] != ':' {
			return 0, 0, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return 0, 0, false
	}
	if d > daysIn(mo, year) {
		return 0, 0, false // Feb 30 and the like
	}
	t := time.Date(year, time.Month(mo), d, hh, mm, ss, nsec, time.UTC)
	return t.UnixNano() - int64(offset)*1e9, i, true
}

// daysIn returns the number of days in month mon (1..12) of year.
func daysIn(mon, year int) int {
	switch mon {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// parse5424 parses what follows "<PRI>1 ":
// TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD [SP MSG].
// It reports false, with e partly filled, if b does not follow RFC 5424.
func (p *Parser) parse5424(b []byte, e *record.Entry) bool {
	if len(b) >= 2 && b[0] == '-' && b[1] == ' ' {
		b = b[2:]
	} else {
		ts, n, ok := parseRFC3339(b)
		if !ok || n >= len(b) || b[n] != ' ' {
			return false
		}
		e.SourceTime = ts
		b = b[n+1:]
	}
	var tok [4][]byte // HOSTNAME, APP-NAME, PROCID, MSGID
	for i := range tok {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 || !isPrintUSASCII(b[:sp]) {
			return false
		}
		if !(sp == 1 && b[0] == '-') {
			tok[i] = capped(b[:sp])
		}
		b = b[sp+1:]
	}
	e.Hostname, e.Tag, e.MsgID = tok[0], tok[1], tok[3]
	if tok[2] != nil {
		if pid, ok := parseDecimalU32(tok[2]); ok && pid != 0 {
			e.ClaimedPID = pid
		} else {
			e.Fields = append(e.Fields, record.Field{Key: p.appendScratchString(procIDKey), Value: tok[2]})
		}
	}
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	} else {
		var ok bool
		if b, ok = p.parseSD(b, e); !ok {
			return false
		}
	}
	b = trimNewlines(b)
	if len(b) > 0 {
		if b[0] != ' ' {
			return false
		}
		b = bytes.TrimPrefix(b[1:], []byte("\xEF\xBB\xBF"))
	}
	e.Message = capped(b)
	return true
}

// procIDKey is the Field key of an RFC 5424 PROCID that is not a pid.
const procIDKey = "PROCID"

// maxSDName is RFC 5424's limit on SD-ID and PARAM-NAME. Enforcing it
// bounds the "SDID.param" keys built in scratch to a few times the
// datagram's size.
const maxSDName = 32

// parseSD parses one or more SD-ELEMENTs at the start of b, appending a
// Field per SD-PARAM (Key "SDID.param", value unescaped) and one with Key
// "SDID" and no value for an element without parameters. It returns the
// rest of b.
func (p *Parser) parseSD(b []byte, e *record.Entry) ([]byte, bool) {
	if len(b) == 0 || b[0] != '[' {
		return nil, false
	}
	for len(b) > 0 && b[0] == '[' {
		id := sdName(b[1:])
		if id == nil {
			return nil, false
		}
		b = b[1+len(id):]
		params := 0
		for len(b) > 0 && b[0] == ' ' {
			name := sdName(b[1:])
			if name == nil {
				return nil, false
			}
			b = b[1+len(name):]
			if len(b) < 2 || b[0] != '=' || b[1] != '"' {
				return nil, false
			}
			b = b[2:]
			i, escaped := 0, false
			for i < len(b) && b[i] != '"' {
				if b[i] == '\\' && i+1 < len(b) {
					escaped = true
					i++
				}
				i++
			}
			if i >= len(b) {
				return nil, false
			}
			value := capped(b[:i])
			if escaped {
				value = p.unescapeSD(value)
			}
			b = b[i+1:]
			key := p.appendScratch(id, []byte{'.'}, name)
			e.Fields = append(e.Fields, record.Field{Key: key, Value: value})
			params++
		}
		if len(b) == 0 || b[0] != ']' {
			return nil, false
		}
		b = b[1:]
		if params == 0 {
			e.Fields = append(e.Fields, record.Field{Key: capped(id)})
		}
	}
	return b, true
}

// sdName returns the SD-NAME at the start of b: 1..32 PRINTUSASCII other
// than '=', ' ', ']' and '"'; nil if there is none.
func sdName(b []byte) []byte {
	i := 0
	for i < len(b) && i <= maxSDName {
		c := b[i]
		if c <= ' ' || c >= 0x7f || c == '=' || c == ']' || c == '"' {
			break
		}
		i++
	}
	if i == 0 || i > maxSDName {
		return nil
	}
	return b[:i]
}

// unescapeSD copies v into scratch replacing \" \\ and \] by the escaped
// character. A backslash before any other character is kept, as RFC 5424
// section 6.3.3 requires.
func (p *Parser) unescapeSD(v []byte) []byte {
	start := len(p.scratch)
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
			c = v[i]
		}
		p.scratch = append(p.scratch, c)
	}
	return p.scratch[start:len(p.scratch):len(p.scratch)]
}

func isPrintUSASCII(b []byte) bool {
	for _, c := range b {
		if c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
