package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/collectord/collectord/pkg/record"
)

// outputFormat renders records for `logctl tail -o`.
type outputFormat int

const (
	outShort outputFormat = iota
	outShortISO
	outJSON
	outJSONPretty
	outCat
)

// outputNames are the -o values, as journalctl names them; raw, the name
// cat had before, is still accepted.
var outputNames = []string{"short", "short-iso", "json", "json-pretty", "cat"}

func parseOutput(s string) (outputFormat, error) {
	switch s {
	case "short":
		return outShort, nil
	case "short-iso":
		return outShortISO, nil
	case "json":
		return outJSON, nil
	case "json-pretty":
		return outJSONPretty, nil
	case "cat", "raw":
		return outCat, nil
	}
	return 0, fmt.Errorf("output %q: must be one of %s", s, strings.Join(outputNames, ", "))
}

// formatter appends one line per record to a reused buffer.
type formatter struct {
	format   outputFormat
	color    bool
	hostname string // shown when a record names none
	loc      *time.Location
	scratch  []byte // one record's compact JSON, for json-pretty
}

// appendPretty appends the compact JSON object js indented as journalctl
// -o json-pretty shows a record: one field a line, a tab in, and a newline
// after the closing brace.
func appendPretty(b, js []byte) []byte {
	var buf bytes.Buffer
	if err := json.Indent(&buf, js, "", "\t"); err != nil {
		return append(append(b, js...), '\n') // AppendJSON writes valid JSON; not reached
	}
	b = append(b, buf.Bytes()...)
	return append(b, '\n')
}

// ANSI colours by severity, like journalctl: err and worse red, warning
// yellow, notice bold.
func severityColor(sev uint8) (string, string) {
	switch {
	case sev <= 3:
		return "\x1b[1;31m", "\x1b[0m"
	case sev == 4:
		return "\x1b[1;33m", "\x1b[0m"
	case sev == 5:
		return "\x1b[1m", "\x1b[0m"
	}
	return "", ""
}

// pid is the pid to show: the kernel's if known, else the claimed one.
func pid(e *record.Entry) uint32 {
	if e.Flags&record.FlagCreds != 0 {
		return e.PID
	}
	return e.ClaimedPID
}

// appendRecord appends rec's line (with a trailing newline) to b.
func (f *formatter) appendRecord(b []byte, seq uint64, ts int64, e *record.Entry) []byte {
	switch f.format {
	case outCat:
		b = appendText(b, e.Message)
		return append(b, '\n')
	case outJSON:
		return append(record.AppendJSON(b, seq, ts, e), '\n')
	case outJSONPretty:
		f.scratch = record.AppendJSON(f.scratch[:0], seq, ts, e)
		return appendPretty(b, f.scratch)
	}
	t := time.Unix(0, ts).In(f.loc)
	if f.format == outShortISO {
		b = t.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	} else {
		b = t.AppendFormat(b, time.Stamp)
	}
	b = append(b, ' ')
	if len(e.Hostname) > 0 {
		b = appendText(b, e.Hostname)
	} else {
		b = append(b, f.hostname...)
	}
	b = append(b, ' ')
	// The identifier, as journalctl shows it: the tag, else the trusted
	// command name.
	switch {
	case len(e.Tag) > 0:
		b = appendText(b, e.Tag)
	case len(e.Origin.Comm) > 0:
		b = appendText(b, e.Origin.Comm)
	default:
		b = append(b, '-')
	}
	if p := pid(e); p != 0 {
		b = append(b, '[')
		b = strconv.AppendUint(b, uint64(p), 10)
		b = append(b, ']')
	}
	b = append(b, ':', ' ')
	on, off := "", ""
	if f.color {
		on, off = severityColor(e.Severity())
	}
	b = append(b, on...)
	b = appendText(b, e.Message)
	b = append(b, off...)
	return append(b, '\n')
}

// appendText appends s for a terminal: valid UTF-8 and newlines and tabs as
// they are; other control characters and invalid bytes as \xNN.
func appendText(b, s []byte) []byte {
	for len(s) > 0 {
		// Fast path: a run of printable ASCII, newlines and tabs as is.
		i := 0
		for i < len(s) && (s[i] >= 0x20 && s[i] < 0x7f || s[i] == '\n' || s[i] == '\t') {
			i++
		}
		b = append(b, s[:i]...)
		if s = s[i:]; len(s) == 0 {
			break
		}
		r, n := utf8.DecodeRune(s)
		switch {
		case r == utf8.RuneError && n == 1, r < 0x20 && r != '\n' && r != '\t', r == 0x7f:
			b = append(b, '\\', 'x', hex[s[0]>>4], hex[s[0]&15])
		default:
			b = append(b, s[:n]...)
		}
		s = s[n:]
	}
	return b
}

const hex = "0123456789abcdef"
