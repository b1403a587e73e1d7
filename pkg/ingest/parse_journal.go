package ingest

import (
	"bytes"
	"encoding/binary"

	"github.com/collectord/collectord/pkg/record"
)

// maxJournalName is journald's limit on a field name's length.
const maxJournalName = 64

// unparsedKey names the Field holding the bytes of a journald datagram from
// the first line that could not be parsed to the end. Clients cannot send
// it: names starting with '_' are reserved for trusted fields and dropped.
const unparsedKey = "_UNPARSED"

// journalNameLen returns the length of the journal field name at the start
// of b: characters A-Z, 0-9 and '_', not starting with a digit. 0 means
// there is none. The length limit is checked by the caller.
func journalNameLen(b []byte) int {
	i := 0
	for i < len(b) {
		c := b[i]
		if !('A' <= c && c <= 'Z' || c == '_' || i > 0 && isDigit(c)) {
			break
		}
		i++
	}
	return i
}

// isJournal reports whether data is a journald native protocol datagram:
// it starts with a field name that is followed either by '=' and a value
// ending in '\n', or by '\n', a little-endian 64-bit length, that many
// bytes and '\n'. The first field must be complete; later damage only
// marks the entry malformed.
func isJournal(data []byte) bool {
	n := journalNameLen(data)
	if n == 0 || n > maxJournalName || n == len(data) {
		return false
	}
	switch data[n] {
	case '=':
		return bytes.IndexByte(data[n+1:], '\n') >= 0
	case '\n':
		rest := data[n+1:]
		if len(rest) < 8 {
			return false
		}
		l := binary.LittleEndian.Uint64(rest)
		rest = rest[8:]
		return l < uint64(len(rest)) && rest[l] == '\n'
	}
	return false
}

// parseJournal parses a datagram isJournal accepted. See doc.go for how
// fields map onto the entry.
func (p *Parser) parseJournal(data []byte, e *record.Entry) {
	e.Format = record.FormatJournal
	var (
		haveMsg, havePri, haveTag, havePID bool
		sev                                uint8
		facility                           []byte // SYSLOG_FACILITY value, mapped only with PRIORITY
	)
	add := func(name, value []byte) {
		value = capped(value)
		switch string(name) {
		case "MESSAGE":
			if !haveMsg {
				e.Message, haveMsg = value, true
				return
			}
		case "PRIORITY":
			if !havePri && len(value) == 1 && '0' <= value[0] && value[0] <= '7' {
				sev, havePri = value[0]-'0', true
				return
			}
		case "SYSLOG_FACILITY":
			if v, ok := parseDecimalU32(value); facility == nil && ok && v <= 23 {
				facility = value
				return
			}
		case "SYSLOG_IDENTIFIER":
			if !haveTag {
				e.Tag, haveTag = value, true
				return
			}
		case "SYSLOG_PID":
			if v, ok := parseDecimalU32(value); !havePID && ok && v != 0 {
				e.ClaimedPID, havePID = v, true
				return
			}
		}
		if name[0] == '_' {
			return // trusted fields cannot come from a client; journald drops them too
		}
		e.Fields = append(e.Fields, record.Field{Key: capped(name), Value: value})
	}
	unparsed := func(rest []byte) {
		e.Flags |= record.FlagMalformed
		if len(rest) > 0 {
			e.Fields = append(e.Fields, record.Field{Key: p.appendScratchString(unparsedKey), Value: capped(rest)})
		}
	}

	b := data
	for len(b) > 0 {
		if b[0] == '\n' { // empty line: journald skips it too
			b = b[1:]
			continue
		}
		n := journalNameLen(b)
		if n == 0 || n > maxJournalName || n == len(b) || (b[n] != '=' && b[n] != '\n') {
			unparsed(b)
			break
		}
		name := b[:n]
		if b[n] == '=' {
			rest := b[n+1:]
			nl := bytes.IndexByte(rest, '\n')
			if nl < 0 { // last line without its newline: keep it
				add(name, rest)
				unparsed(nil)
				break
			}
			add(name, rest[:nl])
			b = rest[nl+1:]
			continue
		}
		// Binary-safe form: NAME '\n' le64 length, value, '\n'.
		rest := b[n+1:]
		if len(rest) < 8 {
			unparsed(b)
			break
		}
		l := binary.LittleEndian.Uint64(rest)
		rest = rest[8:]
		if l > uint64(len(rest)) {
			unparsed(b)
			break
		}
		add(name, rest[:l])
		rest = rest[l:]
		if len(rest) == 0 || rest[0] != '\n' {
			unparsed(rest)
			break
		}
		b = rest[1:]
	}

	if havePri {
		fac := uint8(1) // user, as syslog(3) assumes
		if facility != nil {
			v, _ := parseDecimalU32(facility)
			fac = uint8(v)
		}
		e.Priority = fac<<3 | sev
	} else {
		e.Priority = record.DefaultPriority
		e.Flags |= record.FlagDefaultPriority
		if facility != nil {
			e.Fields = append(e.Fields, record.Field{Key: p.appendScratchString("SYSLOG_FACILITY"), Value: facility})
		}
	}
}
