package record

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON object that represents one stored record to
// dst and returns the extended slice: its sequence number, the time the
// daemon received it (Unix nanoseconds) and the entry. It is the one JSON
// form of a record: `logctl tail -o json` prints it, one object per line,
// and whatever else exports records as JSON writes the same bytes.
//
// Keys come in a fixed order and are left out when they hold nothing:
//
//	seq          number   the ring sequence number
//	time         string   receive time, RFC 3339 UTC with nanoseconds
//	priority     number   severity, 0 (emerg) .. 7 (debug)
//	facility     number   facility, 0 (kern) .. 23 (local7)
//	pid uid gid  number   the sender's kernel credentials (FlagCreds only)
//	claimed_pid  number   the pid the message text named
//	source_time  string   the timestamp the message carried
//	tag hostname msgid    string
//	message      string   always present
//	fields       object   key → value, in stored order (a repeated key repeats)
//	comm exe unit user_unit slice cgroup
//	             string   trusted origin fields (Entry.Origin), when known
//	truncated malformed   true, when flagged
//
// Strings are valid JSON whatever the entry holds: a byte that is not
// UTF-8 is kept visible as the text \xNN (backslash, x, two hex digits),
// never dropped or replaced; control characters are escaped. AppendJSON
// allocates nothing when dst has room.
func AppendJSON(dst []byte, seq uint64, ts int64, e *Entry) []byte {
	b := append(dst, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"`...)
	b = time.Unix(0, ts).UTC().AppendFormat(b, jsonTime)
	b = append(b, `","priority":`...)
	b = strconv.AppendUint(b, uint64(e.Severity()), 10)
	b = append(b, `,"facility":`...)
	b = strconv.AppendUint(b, uint64(e.Facility()), 10)
	if e.Flags&FlagCreds != 0 {
		b = append(b, `,"pid":`...)
		b = strconv.AppendUint(b, uint64(e.PID), 10)
		b = append(b, `,"uid":`...)
		b = strconv.AppendUint(b, uint64(e.UID), 10)
		b = append(b, `,"gid":`...)
		b = strconv.AppendUint(b, uint64(e.GID), 10)
	}
	if e.ClaimedPID != 0 {
		b = append(b, `,"claimed_pid":`...)
		b = strconv.AppendUint(b, uint64(e.ClaimedPID), 10)
	}
	if e.SourceTime != 0 {
		b = append(b, `,"source_time":"`...)
		b = time.Unix(0, e.SourceTime).UTC().AppendFormat(b, jsonTime)
		b = append(b, '"')
	}
	if len(e.Tag) > 0 {
		b = append(b, `,"tag":`...)
		b = AppendJSONString(b, e.Tag)
	}
	if len(e.Hostname) > 0 {
		b = append(b, `,"hostname":`...)
		b = AppendJSONString(b, e.Hostname)
	}
	if len(e.MsgID) > 0 {
		b = append(b, `,"msgid":`...)
		b = AppendJSONString(b, e.MsgID)
	}
	b = append(b, `,"message":`...)
	b = AppendJSONString(b, e.Message)
	if len(e.Fields) > 0 {
		b = append(b, `,"fields":{`...)
		for i, fl := range e.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = AppendJSONString(b, fl.Key)
			b = append(b, ':')
			b = AppendJSONString(b, fl.Value)
		}
		b = append(b, '}')
	}
	b = appendOrigin(b, &e.Origin)
	if e.Flags&FlagTruncated != 0 {
		b = append(b, `,"truncated":true`...)
	}
	if e.Flags&FlagMalformed != 0 {
		b = append(b, `,"malformed":true`...)
	}
	return append(b, '}')
}

// originKeys are the JSON keys of Origin's fields, in Origin.fields order.
var originKeys = [6]string{`,"comm":`, `,"exe":`, `,"unit":`, `,"user_unit":`, `,"slice":`, `,"cgroup":`}

// appendOrigin appends the keys of o's non-empty fields: comm, exe, unit,
// user_unit, slice, cgroup.
func appendOrigin(b []byte, o *Origin) []byte {
	for i, f := range o.fields() {
		if len(*f) > 0 {
			b = append(b, originKeys[i]...)
			b = AppendJSONString(b, *f)
		}
	}
	return b
}

// jsonTime is the layout of times in AppendJSON: RFC 3339, nanoseconds.
const jsonTime = "2006-01-02T15:04:05.000000000Z07:00"

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string, escaped as AppendJSON
// describes: bytes that are not UTF-8 become the visible text \xNN.
func AppendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for len(s) > 0 {
		// Fast path: a run of printable ASCII that needs no escaping.
		i := 0
		for i < len(s) && s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' {
			i++
		}
		b = append(b, s[:i]...)
		if s = s[i:]; len(s) == 0 {
			break
		}
		r, n := utf8.DecodeRune(s)
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, '\\', '\\', 'x', hexDigits[s[0]>>4], hexDigits[s[0]&15])
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\t':
			b = append(b, '\\', 't')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u')
			b = append(b, hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15], hexDigits[r&15])
		default:
			b = append(b, s[:n]...)
		}
		s = s[n:]
	}
	return append(b, '"')
}
