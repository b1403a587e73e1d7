package query

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/collectord/collectord/pkg/record"
)

// traceIDLen is the length of a W3C trace id in hex digits.
const traceIDLen = 32

// validTraceID checks that s is a W3C trace id as the protocol spells it:
// 32 lowercase hex digits, not all zero (the W3C's invalid trace id).
func validTraceID(s string) error {
	if len(s) != traceIDLen {
		return fmt.Errorf("%s is not a trace id (%d lowercase hex digits)", strconv.Quote(s), traceIDLen)
	}
	zero := true
	for i := range len(s) {
		c := s[i]
		switch {
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		default:
			return fmt.Errorf("%s is not a trace id (%d lowercase hex digits)", strconv.Quote(s), traceIDLen)
		}
		zero = zero && c == '0'
	}
	if zero {
		return errors.New("the all-zero trace id is invalid")
	}
	return nil
}

// hasTraceID reports whether one of e's structured fields carries the trace
// id want (32 lowercase hex digits) under a trace id key (isTraceIDKey).
// The value is compared without regard to case. It does not allocate.
func hasTraceID(e *record.Entry, want string) bool {
	for i := range e.Fields {
		f := &e.Fields[i]
		if len(f.Value) == traceIDLen && isTraceIDKey(f.Key) && equalHexFold(f.Value, want) {
			return true
		}
	}
	return false
}

// isTraceIDKey reports whether key names a trace id in one of the common
// spellings, without regard to case: trace_id (JSON loggers, OpenTelemetry
// log bridges), traceId and traceid (Java and .NET MDCs), TRACE_ID
// (journald), trace.id (Elastic Common Schema), and any key ending in
// ".trace_id" or ".traceId": otel.trace_id, and RFC 5424 SD params, which
// ingest stores as "SDID.param".
func isTraceIDKey(key []byte) bool {
	return equalFold(key, "trace_id") || equalFold(key, "traceid") || equalFold(key, "trace.id") ||
		hasSuffixFold(key, ".trace_id") || hasSuffixFold(key, ".traceid")
}

// equalHexFold reports whether b spells the lowercase hex string want, with
// hex letters in either case. len(b) must equal len(want).
func equalHexFold(b []byte, want string) bool {
	for i := range len(want) {
		c := b[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}

// equalFold reports whether b equals the lowercase ASCII string lower,
// ignoring ASCII case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(lower) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// hasSuffixFold reports whether b ends with the lowercase ASCII string
// lower, ignoring ASCII case.
func hasSuffixFold(b []byte, lower string) bool {
	return len(b) >= len(lower) && equalFold(b[len(b)-len(lower):], lower)
}
