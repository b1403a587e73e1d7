package record

import (
	"bytes"
	"strconv"
)

// Format says which wire format a datagram was recognised as.
type Format uint8

// The formats a datagram can be recognised as. Values are stored in the
// encoding; new formats are only ever appended.
const (
	FormatRaw     Format = iota // anything else: stored as text, priority user.notice
	FormatRFC3164               // BSD syslog: logger default, Go log/syslog, glibc syslog()
	FormatRFC5424               // IETF syslog with structured data
	FormatPython                // Python SysLogHandler: "<PRI>message\x00"
	FormatJournal               // journald native protocol
	FormatJSON                  // one JSON object per datagram
)

// String returns a short lower-case name ("raw", "rfc3164", ...), or
// "format(N)" for a value this version does not know.
func (f Format) String() string {
	switch f {
	case FormatRaw:
		return "raw"
	case FormatRFC3164:
		return "rfc3164"
	case FormatRFC5424:
		return "rfc5424"
	case FormatPython:
		return "python"
	case FormatJournal:
		return "journal"
	case FormatJSON:
		return "json"
	}
	return "format(" + strconv.Itoa(int(f)) + ")"
}

// Flags describe what the daemon knows about how an entry arrived.
type Flags uint16

// The defined flags. Bits not listed here are reserved; Decode preserves them.
const (
	// FlagCreds: PID, UID and GID were supplied by the kernel (SCM_CREDENTIALS).
	FlagCreds Flags = 1 << iota
	// FlagTruncated: the datagram or memfd was larger than the receive limit
	// and the entry holds only its beginning.
	FlagTruncated
	// FlagMalformed: the datagram claimed a format but did not follow it;
	// what could be parsed is kept, the rest is in Message (for the
	// journald format, which has its own MESSAGE, in a Field named
	// "_UNPARSED"; see package ingest).
	FlagMalformed
	// FlagDefaultPriority: the datagram carried no priority; user.notice was assumed.
	FlagDefaultPriority
	// FlagInvalidUTF8: Message contains bytes that are not valid UTF-8
	// (stored as sent; escaped on output).
	FlagInvalidUTF8
)

// DefaultPriority is the priority assumed for a datagram that carries none:
// facility user (1), severity notice (5), as syslog(3) and logger(1) do.
const DefaultPriority uint8 = 1<<3 | 5

// Field is one structured key/value pair: an RFC 5424 SD-PARAM (Key is
// "SDID.param"), a journald field, or a JSON key.
type Field struct {
	Key   []byte
	Value []byte
}

// Entry is one log record as parsed from a datagram and as stored in a ring
// record's payload. Byte slices may alias the buffer the entry was parsed or
// decoded from: the caller that owns that buffer owns the entry.
type Entry struct {
	Format   Format
	Flags    Flags
	Priority uint8 // facility<<3 | severity, as in syslog's <PRI>

	// Trusted sender identity from SCM_CREDENTIALS; meaningful only with FlagCreds.
	PID, UID, GID uint32

	ClaimedPID uint32 // pid written in the message text ("app[42]:"), never trusted; 0 if none
	SourceTime int64  // timestamp written in the message, Unix nanoseconds; 0 if none

	Hostname []byte
	Tag      []byte // APP-NAME / SYSLOG_IDENTIFIER / program name
	MsgID    []byte // RFC 5424 MSGID
	Message  []byte
	Fields   []Field

	// Origin holds the trusted origin fields the daemon read from
	// /proc/PID for the kernel-supplied PID; empty when it could not.
	Origin Origin
}

// Origin is what the daemon learnt about a sender from /proc/PID, keyed by
// the kernel-supplied pid (SCM_CREDENTIALS): journald's _COMM, _EXE,
// _SYSTEMD_UNIT, _SYSTEMD_USER_UNIT, _SYSTEMD_SLICE and _SYSTEMD_CGROUP.
// A sender cannot set these through the datagram, unlike Fields; comm,
// though, is whatever the process last named itself (prctl PR_SET_NAME).
// Each is empty when it could not be read (the sender had exited, or the
// value was longer than the daemon stores); none is ever guessed.
type Origin struct {
	Comm     []byte // /proc/PID/comm, without the newline
	Exe      []byte // the target of /proc/PID/exe
	Unit     []byte // systemd unit from the cgroup path ("nginx.service", "user@1000.service")
	UserUnit []byte // the unit inside a user manager ("app.service" under user@1000.service)
	Slice    []byte // the slice holding Unit ("system.slice")
	Cgroup   []byte // the cgroup path (v2, or v1 name=systemd)
}

// IsZero reports whether o holds no field.
func (o *Origin) IsZero() bool {
	return len(o.Comm) == 0 && len(o.Exe) == 0 && len(o.Unit) == 0 && len(o.UserUnit) == 0 &&
		len(o.Slice) == 0 && len(o.Cgroup) == 0
}

// Equal reports whether o and p hold the same fields (nil and empty are
// equal).
func (o *Origin) Equal(p *Origin) bool {
	of, pf := o.fields(), p.fields()
	for i := range of {
		if !bytes.Equal(*of[i], *pf[i]) {
			return false
		}
	}
	return true
}

// fields returns o's fields in their encoding order.
func (o *Origin) fields() [6]*[]byte {
	return [6]*[]byte{&o.Comm, &o.Exe, &o.Unit, &o.UserUnit, &o.Slice, &o.Cgroup}
}

// Facility returns the syslog facility number (0..23).
func (e *Entry) Facility() uint8 { return e.Priority >> 3 }

// Severity returns the syslog severity (0 emerg .. 7 debug).
func (e *Entry) Severity() uint8 { return e.Priority & 7 }

// Reset zeroes every field of e but keeps the backing array of e.Fields
// (length 0) so that refilling e does not allocate.
func (e *Entry) Reset() {
	*e = Entry{Fields: e.Fields[:0]}
}

// Equal reports whether e and o hold the same values. Nil and empty byte
// slices are equal; Fields are compared in order.
func (e *Entry) Equal(o *Entry) bool {
	if e.Format != o.Format || e.Flags != o.Flags || e.Priority != o.Priority ||
		e.PID != o.PID || e.UID != o.UID || e.GID != o.GID ||
		e.ClaimedPID != o.ClaimedPID || e.SourceTime != o.SourceTime ||
		!bytes.Equal(e.Hostname, o.Hostname) || !bytes.Equal(e.Tag, o.Tag) ||
		!bytes.Equal(e.MsgID, o.MsgID) || !bytes.Equal(e.Message, o.Message) ||
		len(e.Fields) != len(o.Fields) {
		return false
	}
	if !e.Origin.Equal(&o.Origin) {
		return false
	}
	for i := range e.Fields {
		if !bytes.Equal(e.Fields[i].Key, o.Fields[i].Key) || !bytes.Equal(e.Fields[i].Value, o.Fields[i].Value) {
			return false
		}
	}
	return true
}
