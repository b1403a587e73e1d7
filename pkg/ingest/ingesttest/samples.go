package ingesttest

// Sample is one datagram and a short name for it.
type Sample struct {
	Name string // e.g. "rfc3164", "journal-binary"
	Data string // the datagram, byte-exact
}

// Samples are one datagram per client format, for tests and benchmarks.
// The syslog and JSON ones are byte-exact as the clients send them
// (pkg/ingest's parse_clients_test.go captures them live); the journald
// ones follow the native protocol document, as sd_journal_send writes it.
var Samples = []Sample{
	{"rfc3164", "<13>Nov 24 22:31:11 app[4242]: hi"},
	{"rfc3164-host", "<13>Nov 24 22:31:19 vm root: hi"},
	{"gosyslog", "<14>Nov 24 22:31:11 app[4242]: hi\n"},
	{"rfc5424", `<13>1 2026-11-24T22:31:19.126987+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry"] hi`},
	{"python", "<14>hi\nTraceback (most recent call last):\n  File \"<string>\", line 1\nValueError: x\x00"},
	{"journal", "MESSAGE=hello world\nPRIORITY=6\nSYSLOG_IDENTIFIER=app\nSYSLOG_PID=4242\nCODE_FILE=src/main.c\nCODE_LINE=42\nCODE_FUNC=main\n"},
	{"journal-binary", "MESSAGE\n\x0b\x00\x00\x00\x00\x00\x00\x00hello\nworld\nPRIORITY=6\n"},
	{"json", `{"time":"2026-11-24T22:31:11.123456789+01:00","level":"INFO","msg":"request done","method":"GET","path":"/api/v1/items","status":200,"dur_ms":3.2}` + "\n"},
	{"json-escaped", `{"level":"error","msg":"quote \" and newline\n and \u00e9","err":"boom\tx"}`},
	{"raw", "just a line of text from echo\n"},
}
