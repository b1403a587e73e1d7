package query

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"

	"github.com/collectord/collectord/pkg/record"
)

// Filter selects records: all given conditions must hold, and the zero
// Filter selects every record. It is the "filter" object of a query.
//
// Compile must succeed before Match is called, and must be called again
// after the Filter is changed. A compiled Filter is safe for concurrent
// use by Match; Compile is not.
type Filter struct {
	// Priority keeps records whose severity is at most this (0 emerg ..
	// 7 debug): 3 keeps err and more severe.
	Priority *int `json:"priority,omitempty"`
	// Facility keeps records whose facility is one of these (0..23).
	// An empty list is no condition.
	Facility []int `json:"facility,omitempty"`
	// Tag keeps records with exactly this tag (program name). Empty is no
	// condition.
	Tag string `json:"tag,omitempty"`
	// PID keeps records whose trusted sender pid (from the kernel) is this.
	// Records without kernel credentials never match.
	PID *uint32 `json:"pid,omitempty"`
	// UID keeps records whose trusted sender uid is this. Records without
	// kernel credentials never match.
	UID *uint32 `json:"uid,omitempty"`
	// Since keeps records received at or after this time, Unix
	// nanoseconds. Zero is no condition.
	Since int64 `json:"since,omitempty"`
	// Until keeps records received before this time, Unix nanoseconds.
	// Zero is no condition.
	Until int64 `json:"until,omitempty"`
	// Fields keeps records that have, for each key, a structured field
	// with that key and exactly that value.
	Fields map[string]string `json:"fields,omitempty"`
	// TraceID keeps records that carry this W3C trace id (32 lowercase
	// hex digits) in a structured field under one of the usual keys,
	// compared without regard to case: trace_id, traceId, TRACE_ID
	// (journald), trace.id (Elastic Common Schema), or any key ending in
	// ".trace_id" or ".traceId" (otel.trace_id, an RFC 5424 SD param such
	// as "otel@32473.trace_id"). The field's value may be in upper case.
	// Empty is no condition.
	TraceID string `json:"trace_id,omitempty"`
	// Unit keeps records whose trusted systemd unit (record.Origin.Unit,
	// from the sender's cgroup) matches one of these, as journalctl -u
	// does: a shell pattern (* ? [...]) as it is, a plain name with
	// ".service" appended unless it ends in a unit type ("nginx" means
	// nginx.service). Records without a unit never match. An empty list
	// is no condition.
	Unit []string `json:"unit,omitempty"`
	// Comm keeps records whose trusted command name (record.Origin.Comm,
	// /proc/PID/comm) is exactly this. Empty is no condition.
	Comm string `json:"comm,omitempty"`
	// Grep keeps records whose message matches this RE2 regular expression
	// (Go regexp syntax).
	Grep string `json:"grep,omitempty"`

	c compiledFilter
}

// IsZero reports whether f has no condition, so that it selects every
// record (and is left out of a request's JSON).
func (f Filter) IsZero() bool {
	return f.Priority == nil && len(f.Facility) == 0 && f.Tag == "" && f.PID == nil && f.UID == nil &&
		f.Since == 0 && f.Until == 0 && len(f.Fields) == 0 && f.Grep == "" && f.TraceID == "" &&
		len(f.Unit) == 0 && f.Comm == ""
}

// compiledFilter is a Filter in the form Match uses.
type compiledFilter struct {
	ok        bool   // Compile succeeded
	all       bool   // no condition: everything matches
	needEntry bool   // a condition looks inside the entry (not only the time)
	maxSev    uint8  // 7 when no condition
	facMask   uint32 // bit f set: facility f matches; all ones when no condition
	fields    []fieldCond
	traceID   string   // validated: 32 lowercase hex digits, or empty
	units     []string // unit patterns, as journalctl mangles them
	re        *regexp.Regexp
}

// fieldCond is one required structured field.
type fieldCond struct{ key, value []byte }

// Facilities and severities as syslog numbers them.
const (
	maxFacility = 23
	maxSeverity = 7
)

// Compile validates the filter and prepares it for Match. The error is a
// *RequestError naming the bad key ("filter.grep").
func (f *Filter) Compile() error {
	c := compiledFilter{maxSev: maxSeverity, facMask: ^uint32(0)}
	if f.Priority != nil {
		if *f.Priority < 0 || *f.Priority > maxSeverity {
			return filterError("priority", fmt.Errorf("%d is not a severity (0..%d)", *f.Priority, maxSeverity))
		}
		c.maxSev = uint8(*f.Priority)
	}
	if len(f.Facility) > 0 {
		c.facMask = 0
		for _, fac := range f.Facility {
			if fac < 0 || fac > maxFacility {
				return filterError("facility", fmt.Errorf("%d is not a facility (0..%d)", fac, maxFacility))
			}
			c.facMask |= 1 << fac
		}
	}
	if f.Since != 0 && f.Until != 0 && f.Until <= f.Since {
		return filterError("until", fmt.Errorf("%d is not after since (%d)", f.Until, f.Since))
	}
	if len(f.Fields) > 0 {
		c.fields = make([]fieldCond, 0, len(f.Fields))
		for k, v := range f.Fields {
			if k == "" {
				return filterError("fields", errors.New("empty key"))
			}
			c.fields = append(c.fields, fieldCond{key: []byte(k), value: []byte(v)})
		}
		sort.Slice(c.fields, func(i, j int) bool { return bytes.Compare(c.fields[i].key, c.fields[j].key) < 0 })
	}
	if f.TraceID != "" {
		if err := validTraceID(f.TraceID); err != nil {
			return filterError("trace_id", err)
		}
		c.traceID = f.TraceID
	}
	for _, u := range f.Unit {
		p, err := unitPattern(u)
		if err != nil {
			return filterError("unit", fmt.Errorf("%q: %w", u, err))
		}
		c.units = append(c.units, p)
	}
	if f.Grep != "" {
		re, err := regexp.Compile(f.Grep)
		if err != nil {
			return filterError("grep", err)
		}
		c.re = re
	}
	c.needEntry = f.Priority != nil || len(f.Facility) > 0 || f.Tag != "" || f.PID != nil ||
		f.UID != nil || len(c.fields) > 0 || c.traceID != "" || c.re != nil || len(c.units) > 0 || f.Comm != ""
	c.all = !c.needEntry && f.Since == 0 && f.Until == 0
	c.ok = true
	f.c = c
	return nil
}

func filterError(key string, err error) error {
	return &RequestError{Field: "filter." + key, Err: err}
}

// Match reports whether a record received at t (Unix nanoseconds) whose
// payload decodes to e passes the filter. It does not allocate. It panics
// if Compile has not succeeded.
func (f *Filter) Match(t int64, e *record.Entry) bool {
	c := &f.c
	if !c.ok {
		panic("query: Filter.Match called before a successful Compile")
	}
	if c.all {
		return true
	}
	if !f.matchTime(t) {
		return false
	}
	if !c.needEntry {
		return true
	}
	if e.Severity() > c.maxSev || c.facMask&(1<<e.Facility()) == 0 {
		return false
	}
	if f.Tag != "" && string(e.Tag) != f.Tag {
		return false
	}
	if f.PID != nil && (e.Flags&record.FlagCreds == 0 || e.PID != *f.PID) {
		return false
	}
	if f.UID != nil && (e.Flags&record.FlagCreds == 0 || e.UID != *f.UID) {
		return false
	}
	for i := range c.fields {
		if !hasField(e, &c.fields[i]) {
			return false
		}
	}
	if c.traceID != "" && !hasTraceID(e, c.traceID) {
		return false
	}
	if f.Comm != "" && string(e.Origin.Comm) != f.Comm {
		return false
	}
	if len(c.units) > 0 && !matchUnit(c.units, e.Origin.Unit) {
		return false
	}
	return c.re == nil || c.re.Match(e.Message)
}

// matchTime checks only the receive time.
func (f *Filter) matchTime(t int64) bool {
	return (f.Since == 0 || t >= f.Since) && (f.Until == 0 || t < f.Until)
}

// matchUnit reports whether unit is set and matches one of the patterns.
func matchUnit(patterns []string, unit []byte) bool {
	if len(unit) == 0 {
		return false
	}
	for _, p := range patterns {
		if globMatch(p, unit) {
			return true
		}
	}
	return false
}

func hasField(e *record.Entry, want *fieldCond) bool {
	for i := range e.Fields {
		if bytes.Equal(e.Fields[i].Key, want.key) && bytes.Equal(e.Fields[i].Value, want.value) {
			return true
		}
	}
	return false
}

// matchesAll reports whether a compiled filter has no condition.
func (f *Filter) matchesAll() bool { return f.c.all }

// needsEntry reports whether a compiled filter looks inside the payload;
// when it does not, the payload need not be decoded.
func (f *Filter) needsEntry() bool { return f.c.needEntry }
