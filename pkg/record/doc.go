// Package record defines a collectord log entry, its binary encoding as
// the payload of a ring record, its JSON form, and syslog's priority names.
//
// # Entry
//
// An Entry is what package ingest parses out of one datagram, plus the
// sender credentials the daemon adds. Its byte slices are not copies: they
// alias the buffer the entry was parsed or decoded from, so whoever owns
// that buffer owns the entry, and the buffer must not change while the entry
// is in use. Entry has no internal synchronisation; share one only
// read-only.
//
// # Encoding, versions 1 and 2
//
// AppendEncode writes, and Decode reads, this layout. Multi-byte integers
// are little-endian; "uvarint" is encoding/binary's unsigned varint (7 bits
// per byte, low group first) and must be minimal (no redundant trailing
// 0x80 groups), so every entry has exactly one encoding.
//
//	offset  size  field
//	0       1     version: 1 (VersionNoOrigin) or 2 (Version)
//	1       1     Format
//	2       2     Flags (u16)
//	4       1     Priority (facility<<3 | severity)
//	5       4     PID (u32, trusted, from SCM_CREDENTIALS)
//	9       4     UID (u32)
//	13      4     GID (u32)
//	17      4     ClaimedPID (u32, from the message text)
//	21      8     SourceTime (i64, Unix nanoseconds; 0 = none)
//	29      var   Hostname: uvarint length, then the bytes
//	        var   Tag:      uvarint length, then the bytes
//	        var   MsgID:    uvarint length, then the bytes
//	        var   Message:  uvarint length, then the bytes
//	        var   field count: uvarint
//	        var   per field: uvarint key length, key bytes,
//	                         uvarint value length, value bytes
//	        var   version 2 only, the trusted Origin fields, each a
//	              uvarint length then the bytes: Comm, Exe, Unit,
//	              UserUnit, Slice, Cgroup
//
// AppendEncode writes version 2 exactly when the entry has an Origin
// field, and version 1 otherwise: a version 2 encoding whose Origin
// fields are all empty is not canonical, and Decode rejects it. So
// records without origin fields (every record written before they
// existed, and those from senders whose /proc could not be read) keep
// the version 1 layout that older readers understand, and this package
// decodes both. Origin fields are kept apart from Fields: a sender can put
// any key in Fields ("comm" in a JSON datagram), never in Origin.
//
// The encoding ends exactly after the last field: Decode needs the exact
// payload length (the ring stores it) and rejects trailing bytes. An empty
// entry takes 34 bytes; each byte slice costs its length plus 1 byte up to
// 127 bytes, 2 bytes up to 16383, 3 up to 2 MiB.
//
// Format values and Flags bits this version does not know are carried
// through unchanged; readers should show an unknown Format like FormatRaw.
// A layout change gets a new version byte, which older readers reject:
// a version 1 reader rejects a version 2 record as corrupt.
//
// PeekUID reads only the fixed header: the trusted uid of an entry with
// FlagCreds, in constant time, so that a reader serving one user's records
// (pkg/query) skips everyone else's without decoding them.
//
// # JSON
//
// AppendJSON writes the one JSON object that represents a stored record
// (sequence number, receive time, entry, its origin fields): what `logctl tail -o json`
// prints and what anything else that exports records as JSON must write,
// so that consumers see one format. Its keys and escapes are documented on
// the function and pinned by a golden file (testdata/json.golden).
//
// # Priority names
//
// FacilityName, SeverityName, ParseSeverity and ParsePriority use the
// names syslog(3) and util-linux logger use ("auth.err", "local0.warning").
//
// # Limits and guarantees
//
// Lengths and the field count are bounded only by the input: a length may
// not exceed the bytes that remain, and the field count may not exceed half
// of them (a field takes at least two bytes), so Decode's allocations are
// bounded by len(input). Decode never panics on arbitrary input; any
// truncation, lying length, non-minimal varint, trailing byte or unknown
// version is reported as an error wrapping ErrCorrupt. Decode does not
// validate contents (UTF-8, priority range, field names): it returns what
// was stored.
//
// Neither function allocates in the steady state: AppendEncode when dst has
// EncodedLen(e) bytes of spare capacity, Decode when e.Fields has capacity
// for the stored fields; nor does AppendJSON when dst has room. All
// functions are safe for concurrent use; the memory they return is the
// caller's (appended to dst, or aliasing the caller's input).
package record
