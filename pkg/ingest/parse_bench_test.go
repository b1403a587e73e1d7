package ingest

import (
	"testing"

	"github.com/collectord/collectord/pkg/record"
)

// parseSamples are one datagram per client format. The syslog and JSON
// ones are byte-exact as the clients send them (parse_clients_test.go
// captures them live); the journald ones follow the native protocol
// document, as sd_journal_send writes it.
var parseSamples = []struct{ name, data string }{
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

func BenchmarkParse(b *testing.B) {
	for _, s := range parseSamples {
		b.Run(s.name, func(b *testing.B) {
			p := newParserForTest()
			e := record.Entry{Fields: make([]record.Field, 0, 16)}
			in := []byte(s.data)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				p.Parse(in, &e)
			}
		})
	}
}
