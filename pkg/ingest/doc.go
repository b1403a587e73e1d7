// Package ingest turns the datagrams applications send to collectord into
// record.Entry values: one Parser accepts every format real clients send
// (util-linux logger, syslog(3) and Go's log/syslog, Python's
// SysLogHandler, the journald native protocol, JSON, raw text). It is the
// portable part of collectord's ingest path; the daemon's Linux socket →
// ring loop (internal/ingestloop) calls it for every datagram, and any Go
// program may call it on bytes from anywhere.
//
// # Parser
//
// Parser.Parse is a pure function of the datagram bytes (and, for RFC 3164
// timestamps, of a clock and a time zone): it opens no sockets. Each
// receiving goroutine reuses its own Parser; Parse never fails, never
// panics, and allocates nothing per datagram in the steady state (it grows
// a scratch buffer and the entry's Fields array at most a few times, then
// reuses them).
//
// The slices Parse stores in an Entry alias the datagram, or the Parser's
// scratch buffer for bytes that had to be rewritten (unescaped JSON strings
// and SD-PARAM values, "SDID.param" keys, a few names the parser supplies).
// They are valid while the datagram buffer is unchanged and until the next
// Parse on the same Parser. Encode the entry (record.AppendEncode) before
// reusing either.
//
// # Detection
//
// Each datagram is classified on its own, by its first bytes:
//
//   - '<' and a valid PRI ("<0>".."<191>", 1-3 digits, no leading zero):
//     syslog, see below.
//   - '<' without a valid PRI (e.g. "<192>", "<013>"): FormatRaw, the whole
//     datagram as the message.
//   - '{': one JSON object (see below); if it is not valid JSON,
//     FormatRaw with FlagMalformed and the whole datagram as the message.
//   - a journald field name followed by '=' and a value ending in '\n', or
//     by '\n' and a complete binary-safe value ending in '\n': the journald
//     native protocol (see below).
//   - anything else: FormatRaw, the whole datagram as the message.
//
// What follows a valid PRI is tried as, in this order:
//
//  1. RFC 5424, if it starts with "1 " (see below).
//  2. RFC 3164 with a timestamp, "TIMESTAMP [HOSTNAME ]TAG[[PID]]: MSG":
//     the timestamp is "Mmm dd hh:mm:ss" (the day space-padded as the RFC
//     says, zero-padded, or a single digit) or an RFC 3339 one as
//     rsyslog's high-precision templates send, followed by a space or the
//     end.
//  3. Python's SysLogHandler, "<PRI>MSG\x00", if it ends in NUL: the
//     message is everything between the PRI and the NUL; no tag is looked
//     for (an ident the program set is part of the message).
//  4. RFC 3164 without timestamp, "TAG: MSG" or "TAG[PID]: MSG".
//  5. Otherwise FormatRaw with the PRI kept and the rest as the message;
//     with FlagMalformed if it started with "1 " (RFC 5424 was claimed but
//     the header was broken).
//
// Entries without a priority get user.notice (13) and
// FlagDefaultPriority. Trailing line terminators ('\n', '\r') are removed
// from the message of every format except journald (whose values are
// binary-safe and kept exactly); other newlines are kept, so multi-line
// messages such as Python tracebacks stay whole. NUL bytes are kept except
// Python's one trailing NUL. A message that is not valid UTF-8 is stored as
// sent with FlagInvalidUTF8.
//
// # RFC 3164
//
// After the timestamp, HOSTNAME is recognised only when the token after it
// has the tag shape: "vm root: hi" is host vm, tag root; "root: hi" is tag
// root. TAG is 1..128 printable ASCII bytes other than ':', '[' and ']',
// ended by ':' or "[PID]:", and the colon must be followed by a space or
// the end of the datagram (so "http://x" is not a tag). If no tag is found
// the whole text after the timestamp is the message. The timestamp is read
// in Parser.Location (default time.Local) and given the year that puts it
// closest to Parser.Now (so "Dec 31 23:59:59" read on January 1 is last
// year); "Feb 29" takes the nearest leap year.
//
// # RFC 5424
//
// "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]", "-" for nil
// values. HOSTNAME, APP-NAME and MSGID go to Hostname, Tag and MsgID
// (header token lengths are not limited). A PROCID that is a positive
// decimal number is ClaimedPID; any other PROCID is kept as a Field named
// "PROCID". Each SD-PARAM becomes a Field "SDID.param" (e.g.
// "timeQuality.tzKnown") with \" \\ and \] unescaped (a backslash before
// any other byte is kept); an SD-ELEMENT without parameters becomes a
// Field "SDID" with an empty value. SD-IDs and PARAM-NAMEs are limited to
// 32 bytes as in the RFC. A UTF-8 BOM at the start of MSG is removed.
// Timestamps must lie in years 1678..2261 (the range of int64 Unix
// nanoseconds).
//
// # journald native protocol
//
// Lines "NAME=value\n" and binary-safe fields "NAME\n" + le64 length +
// value + "\n"; names are A-Z, 0-9 and '_', not starting with a digit, at
// most 64 bytes; empty lines are skipped. The first MESSAGE becomes
// Message, the first SYSLOG_IDENTIFIER Tag, the first positive decimal
// SYSLOG_PID ClaimedPID, and PRIORITY (one digit 0..7) with SYSLOG_FACILITY
// (0..23, default user) Priority; these are not repeated in Fields. Without
// a valid PRIORITY the entry gets user.notice with FlagDefaultPriority and
// SYSLOG_FACILITY stays a Field. Every other field, and any repeated or
// unmappable value of the fields above (e.g. PRIORITY=9), is a Field, in
// datagram order. Fields whose names start with '_' are trusted fields
// that only journald itself may set; like journald, the parser drops
// them. SYSLOG_TIMESTAMP is kept as a Field, not parsed.
//
// The first field must be complete for a datagram to be recognised.
// After it, damage sets FlagMalformed and keeps what was valid: a last
// "NAME=value" line missing its newline is kept as a field; from a line
// that cannot be parsed (bad name, binary length past the end, value not
// followed by '\n') to the end, the bytes are kept in a Field named
// "_UNPARSED". (journald's own large-entry path, an empty datagram with a
// memfd, is the receiver's job: it passes the memfd contents to Parse.)
//
// # JSON
//
// One object, optionally followed by whitespace. Top-level members map to
// the entry when the value has the expected type, first occurrence only:
//
//	msg, message                         string    -> Message
//	level, severity, lvl                 string    -> severity, facility user:
//	                                     or number    syslog names and 0..7,
//	                                                  err/error, warn/warning,
//	                                                  info, debug, trace,
//	                                                  fatal, panic, dpanic, any
//	                                                  case; pino/bunyan 10..60
//	time, timestamp, ts, @timestamp      string    -> SourceTime (RFC 3339)
//	                                     number    -> SourceTime (Unix epoch:
//	                                                  seconds below 1e11, ms
//	                                                  below 1e14, µs below 1e17,
//	                                                  else ns; fraction kept)
//	app, tag, ident, logger              string    -> Tag
//	pid                                  integer   -> ClaimedPID
//	hostname, host                       string    -> Hostname
//
// Every other member (and any that did not map) becomes a Field in
// document order: string values unescaped, other values (numbers, true,
// false, null, nested objects and arrays) as their raw JSON text; nothing
// is flattened. Strings are stored as sent when they are not valid UTF-8;
// unpaired surrogate escapes become U+FFFD. Nesting deeper than 64 levels
// is treated as invalid JSON.
//
// # Known ambiguities
//
//   - RFC 3164 text whose first word ends in ": " is taken as a tag
//     ("<13>Nov 24 22:31:11 Error: disk full" has tag "Error"), and a word
//     before it as a hostname.
//   - A Python message that starts with an RFC 3164 timestamp is parsed as
//     RFC 3164 (keeping the trailing NUL), and one that starts with "1 "
//     plus a valid RFC 5424 header as RFC 5424.
//   - Plain text that starts with an upper-case word, '=' and contains a
//     newline ("ERROR=5\n") is read as a journald datagram.
//   - JSON keys are matched case-sensitively; only the names above map.
package ingest
