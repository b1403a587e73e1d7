package ingest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/ingest/ingesttest"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/record/recordtest"
)

// testNow is the clock of every test Parser: the day the samples in
// DESIGN.md were captured.
var testNow = time.Date(2026, time.November, 24, 22, 31, 30, 0, time.UTC)

func newParserForTest() *Parser {
	return &Parser{Now: func() time.Time { return testNow }, Location: time.UTC}
}

// wantTime parses an RFC 3339 time for want values.
func wantTime(t *testing.T, s string) int64 {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UnixNano()
}

type parseTest struct {
	name string
	in   string
	want record.Entry
}

func runParseTests(t *testing.T, tests []parseTest) {
	t.Helper()
	p := newParserForTest()
	var e record.Entry
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.in)
			p.Parse(in, &e)
			recordtest.Check(t, in, &e, &tt.want)
			// Every slice must alias the input or the scratch buffer and be
			// capped: appending to it must not change anything else.
			for _, s := range [][]byte{e.Hostname, e.Tag, e.MsgID, e.Message} {
				if cap(s) != len(s) {
					t.Errorf("slice %q has cap %d > len", s, cap(s))
				}
			}
			for _, f := range e.Fields {
				if cap(f.Key) != len(f.Key) || cap(f.Value) != len(f.Value) {
					t.Errorf("field %q=%q is not capped", f.Key, f.Value)
				}
			}
		})
	}
}

func TestParsePRI(t *testing.T) {
	tests := []struct {
		in   string
		pri  uint8
		n    int
		isOK bool
	}{
		{"<0>", 0, 3, true},
		{"<7>x", 7, 3, true},
		{"<13>", 13, 4, true},
		{"<191>", 191, 5, true},
		{"<192>", 0, 0, false},
		{"<999>", 0, 0, false},
		{"<00>", 0, 0, false},
		{"<013>", 0, 0, false},
		{"<1234>", 0, 0, false},
		{"<>", 0, 0, false},
		{"<-1>", 0, 0, false},
		{"<13", 0, 0, false},
		{"<1", 0, 0, false},
		{"<13 >", 0, 0, false},
		{"13>", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		pri, n, ok := parsePRI([]byte(tt.in))
		if pri != tt.pri || n != tt.n || ok != tt.isOK {
			t.Errorf("parsePRI(%q) = %d, %d, %v; want %d, %d, %v", tt.in, pri, n, ok, tt.pri, tt.n, tt.isOK)
		}
	}
}

func TestParseRFC3164(t *testing.T) {
	stamp := wantTime(t, "2026-11-24T22:31:11Z")
	runParseTests(t, []parseTest{
		{"logger default", "<13>Nov 24 22:31:11 user: hi", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Tag: []byte("user"), Message: []byte("hi")}},
		{"logger --rfc3164", "<13>Nov 24 22:31:11 vm root: hi", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Hostname: []byte("vm"), Tag: []byte("root"), Message: []byte("hi")}},
		{"logger -t app -i", "<13>Nov 24 22:31:11 app[5174]: hi", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Tag: []byte("app"), ClaimedPID: 5174, Message: []byte("hi")}},
		{"Go log/syslog", "<14>Nov 24 22:31:11 app[4242]: hi\n", record.Entry{
			Format: record.FormatRFC3164, Priority: 14, SourceTime: stamp, Tag: []byte("app"), ClaimedPID: 4242, Message: []byte("hi")}},
		{"host and pid", "<30>Nov 24 22:31:11 web-1.example.com systemd-logind[812]: New session 3 of user alice.", record.Entry{
			Format: record.FormatRFC3164, Priority: 30, SourceTime: stamp, Hostname: []byte("web-1.example.com"),
			Tag: []byte("systemd-logind"), ClaimedPID: 812, Message: []byte("New session 3 of user alice.")}},
		{"ipv4 host, slash in tag", "<22>Nov 24 22:31:11 192.0.2.1 postfix/smtpd[1]: connect", record.Entry{
			Format: record.FormatRFC3164, Priority: 22, SourceTime: stamp, Hostname: []byte("192.0.2.1"),
			Tag: []byte("postfix/smtpd"), ClaimedPID: 1, Message: []byte("connect")}},
		{"space-padded day", "<13>Aug  2 11:31:11 app: x", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: wantTime(t, "2026-08-02T11:31:11Z"), Tag: []byte("app"), Message: []byte("x")}},
		{"zero-padded day", "<13>Aug 02 11:31:11 app: x", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: wantTime(t, "2026-08-02T11:31:11Z"), Tag: []byte("app"), Message: []byte("x")}},
		{"one-digit day", "<13>Aug 2 11:31:11 app: x", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: wantTime(t, "2026-08-02T11:31:11Z"), Tag: []byte("app"), Message: []byte("x")}},
		{"rfc3339 stamp (rsyslog)", "<13>2026-11-24T22:31:11.5+01:00 vm app: x", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: wantTime(t, "2026-11-24T21:31:11.5Z"), Hostname: []byte("vm"), Tag: []byte("app"), Message: []byte("x")}},
		{"no tag", "<13>Nov 24 22:31:11 just some text", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Message: []byte("just some text")}},
		{"colon without space is not a tag", "<13>Nov 24 22:31:11 http://example.com down", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Message: []byte("http://example.com down")}},
		{"non-numeric pid is not a tag", "<13>Nov 24 22:31:11 app[x]: hi", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Message: []byte("app[x]: hi")}},
		{"pid overflow is not a tag", "<13>Nov 24 22:31:11 app[4294967296]: hi", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Message: []byte("app[4294967296]: hi")}},
		{"max pid", "<13>Nov 24 22:31:11 app[4294967295]: hi", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Tag: []byte("app"), ClaimedPID: 4294967295, Message: []byte("hi")}},
		{"empty message", "<13>Nov 24 22:31:11 app:", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Tag: []byte("app")}},
		{"timestamp only", "<13>Nov 24 22:31:11", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp}},
		{"multi-line kept, trailing newlines trimmed", "<11>Nov 24 22:31:11 app: line1\nline2\r\n\n", record.Entry{
			Format: record.FormatRFC3164, Priority: 11, SourceTime: stamp, Tag: []byte("app"), Message: []byte("line1\nline2")}},
		{"NUL inside kept", "<13>Nov 24 22:31:11 app: a\x00b", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, SourceTime: stamp, Tag: []byte("app"), Message: []byte("a\x00b")}},
		{"invalid utf-8", "<13>Nov 24 22:31:11 app: \xff\xfe", record.Entry{
			Format: record.FormatRFC3164, Flags: record.FlagInvalidUTF8, Priority: 13, SourceTime: stamp, Tag: []byte("app"), Message: []byte("\xff\xfe")}},
		{"no timestamp, tag", "<13>app: hi", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("hi")}},
		{"no timestamp, tag and pid", "<13>app[7]: hi\n", record.Entry{
			Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), ClaimedPID: 7, Message: []byte("hi")}},
		{"bad month", "<13>Foo 24 22:31:11 app: hi", record.Entry{
			Format: record.FormatRaw, Priority: 13, Message: []byte("Foo 24 22:31:11 app: hi")}},
		{"bad hour", "<13>Nov 24 24:31:11 app: hi", record.Entry{
			Format: record.FormatRaw, Priority: 13, Message: []byte("Nov 24 24:31:11 app: hi")}},
		{"Nov 31", "<13>Nov 31 22:31:11 app: hi", record.Entry{
			Format: record.FormatRaw, Priority: 13, Message: []byte("Nov 31 22:31:11 app: hi")}},
		{"timestamp glued to text", "<13>Nov 24 22:31:11app: hi", record.Entry{
			Format: record.FormatRaw, Priority: 13, Message: []byte("Nov 24 22:31:11app: hi")}},
	})
}

func TestParseRawAndPRI(t *testing.T) {
	runParseTests(t, []parseTest{
		{"plain text", "hello world\n", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("hello world")}},
		{"empty", "", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13}},
		{"only newline", "\n", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13}},
		{"PRI and junk", "<14>hi there", record.Entry{
			Format: record.FormatRaw, Priority: 14, Message: []byte("hi there")}},
		{"PRI only", "<0>", record.Entry{Format: record.FormatRaw, Priority: 0}},
		{"PRI 191", "<191>x", record.Entry{Format: record.FormatRaw, Priority: 191, Message: []byte("x")}},
		{"PRI too big", "<192>x", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("<192>x")}},
		{"PRI leading zero", "<013>Nov 24 22:31:11 app: hi", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("<013>Nov 24 22:31:11 app: hi")}},
		{"lone <", "<", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("<")}},
		{"lower-case key=value is raw", "foo=bar\n", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("foo=bar")}},
		{"journal-like without newline is raw", "MESSAGE=hi", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("MESSAGE=hi")}},
		{"upper-case word and newline is raw", "HELLO\nWORLD", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("HELLO\nWORLD")}},
		{"binary invalid utf-8", "\xc3\x28", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagDefaultPriority | record.FlagInvalidUTF8, Priority: 13, Message: []byte("\xc3\x28")}},
	})
}

func TestParsePython(t *testing.T) {
	runParseTests(t, []parseTest{
		{"SysLogHandler", "<14>hi\x00", record.Entry{
			Format: record.FormatPython, Priority: 14, Message: []byte("hi")}},
		{"traceback", "<11>boom\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nValueError: x\x00", record.Entry{
			Format: record.FormatPython, Priority: 11,
			Message: []byte("boom\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nValueError: x")}},
		{"ident stays in message", "<14>myapp: hello\x00", record.Entry{
			Format: record.FormatPython, Priority: 14, Message: []byte("myapp: hello")}},
		{"only one NUL removed", "<14>hi\x00\x00", record.Entry{
			Format: record.FormatPython, Priority: 14, Message: []byte("hi\x00")}},
		{"empty", "<14>\x00", record.Entry{Format: record.FormatPython, Priority: 14}},
		{"looks like 5424 but is not", "<14>1 apple\x00", record.Entry{
			Format: record.FormatPython, Priority: 14, Message: []byte("1 apple")}},
		{"3164 with trailing NUL stays 3164", "<14>Nov 24 22:31:11 app: hi\x00", record.Entry{
			Format: record.FormatRFC3164, Priority: 14, SourceTime: wantTime(t, "2026-11-24T22:31:11Z"), Tag: []byte("app"), Message: []byte("hi\x00")}},
	})
}

func TestParseRFC5424(t *testing.T) {
	loggerStamp := wantTime(t, "2026-11-24T22:31:19.126987Z")
	rfcStamp := wantTime(t, "2003-10-11T22:14:15.003Z")
	runParseTests(t, []parseTest{
		{"logger --rfc5424 --sd-id", `<13>1 2026-11-24T22:31:19.126987+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry"] hi`, record.Entry{
			Format: record.FormatRFC5424, Priority: 13, SourceTime: loggerStamp, Hostname: []byte("vm"), Tag: []byte("root"), Message: []byte("hi"),
			Fields: recordtest.Fields("timeQuality.tzKnown", "1", "timeQuality.isSynced", "0", "zoo@123.tiger", "hungry")}},
		{"logger -i --msgid", `<13>1 2026-11-24T22:31:19.126987+00:00 vm app 5175 MID [timeQuality tzKnown="1" isSynced="0"] hi`, record.Entry{
			Format: record.FormatRFC5424, Priority: 13, SourceTime: loggerStamp, Hostname: []byte("vm"), Tag: []byte("app"),
			ClaimedPID: 5175, MsgID: []byte("MID"), Message: []byte("hi"),
			Fields: recordtest.Fields("timeQuality.tzKnown", "1", "timeQuality.isSynced", "0")}},
		{"RFC 5424 example 1 (BOM)", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8", record.Entry{
			Format: record.FormatRFC5424, Priority: 34, SourceTime: rfcStamp, Hostname: []byte("mymachine.example.com"), Tag: []byte("su"),
			MsgID: []byte("ID47"), Message: []byte("'su root' failed for lonvick on /dev/pts/8")}},
		{"RFC 5424 example 2", "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.", record.Entry{
			Format: record.FormatRFC5424, Priority: 165, SourceTime: wantTime(t, "2003-08-24T12:14:15.000003Z"), Hostname: []byte("192.0.2.1"),
			Tag: []byte("myproc"), ClaimedPID: 8710, Message: []byte("%% It's time to make the do-nuts.")}},
		{"RFC 5424 example 4, no MSG", `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`, record.Entry{
			Format: record.FormatRFC5424, Priority: 165, SourceTime: rfcStamp, Hostname: []byte("mymachine.example.com"), Tag: []byte("evntslog"), MsgID: []byte("ID47"),
			Fields: recordtest.Fields("exampleSDID@32473.iut", "3", "exampleSDID@32473.eventSource", "Application", "exampleSDID@32473.eventID", "1011", "examplePriority@32473.class", "high")}},
		{"all nil", "<13>1 - - - - - -", record.Entry{Format: record.FormatRFC5424, Priority: 13}},
		{"all nil, trailing newline", "<13>1 - - - - - -\n", record.Entry{Format: record.FormatRFC5424, Priority: 13}},
		{"escapes in SD values", `<13>1 - h a - - [x@1 q="a\"b" s="c\\d" b="e\]f" o="g\nh" u="]"] m`, record.Entry{
			Format: record.FormatRFC5424, Priority: 13, Hostname: []byte("h"), Tag: []byte("a"), Message: []byte("m"),
			Fields: recordtest.Fields("x@1.q", `a"b`, "x@1.s", `c\d`, "x@1.b", "e]f", "x@1.o", `g\nh`, "x@1.u", "]")}},
		{"SD element without params", "<13>1 - - - - - [origin][meta sequenceId=\"1\"] m", record.Entry{
			Format: record.FormatRFC5424, Priority: 13, Message: []byte("m"), Fields: recordtest.Fields("origin", "", "meta.sequenceId", "1")}},
		{"non-numeric PROCID", "<13>1 - - app worker-3 - - m", record.Entry{
			Format: record.FormatRFC5424, Priority: 13, Tag: []byte("app"), Message: []byte("m"), Fields: recordtest.Fields("PROCID", "worker-3")}},
		{"multi-line message", "<13>1 - - - - - - a\nb\n", record.Entry{
			Format: record.FormatRFC5424, Priority: 13, Message: []byte("a\nb")}},
		{"Z and leap second", "<13>1 2016-12-31T23:59:60Z - - - - - m", record.Entry{
			Format: record.FormatRFC5424, Priority: 13, SourceTime: wantTime(t, "2017-01-01T00:00:00Z"), Message: []byte("m")}},
		// Claimed RFC 5424 but broken: PRI kept, rest as message, malformed.
		{"bad timestamp", "<13>1 2026-13-01T00:00:00Z h a - - - m", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed, Priority: 13, Message: []byte("1 2026-13-01T00:00:00Z h a - - - m")}},
		{"year out of range", "<13>1 9999-01-01T00:00:00Z h a - - - m", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed, Priority: 13, Message: []byte("1 9999-01-01T00:00:00Z h a - - - m")}},
		{"missing SD", "<13>1 - h a - -", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed, Priority: 13, Message: []byte("1 - h a - -")}},
		{"unterminated SD", `<13>1 - h a - - [x a="b" m`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed, Priority: 13, Message: []byte(`1 - h a - - [x a="b" m`)}},
		{"unquoted SD value", `<13>1 - h a - - [x a=b] m`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed, Priority: 13, Message: []byte(`1 - h a - - [x a=b] m`)}},
		{"SD-ID too long", "<13>1 - h a - - [" + strings.Repeat("x", 33) + "] m", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed, Priority: 13, Message: []byte("1 - h a - - [" + strings.Repeat("x", 33) + "] m")}},
		{"no space before MSG", `<13>1 - h a - - [x a="b"]m`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed, Priority: 13, Message: []byte(`1 - h a - - [x a="b"]m`)}},
		{"double space", "<13>1 -  a - - - m", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed, Priority: 13, Message: []byte("1 -  a - - - m")}},
		{"version 2 is not 5424", "<13>2 - - - - - - m", record.Entry{
			Format: record.FormatRaw, Priority: 13, Message: []byte("2 - - - - - - m")}},
	})
}

func TestParseJournal(t *testing.T) {
	bin := func(name, value string) string {
		var l [8]byte
		for i := range l {
			l[i] = byte(uint64(len(value)) >> (8 * i))
		}
		return name + "\n" + string(l[:]) + value + "\n"
	}
	runParseTests(t, []parseTest{
		{"sd_journal_send", "MESSAGE=hello\nPRIORITY=3\nSYSLOG_IDENTIFIER=app\nSYSLOG_PID=42\nCODE_FILE=main.c\nCODE_LINE=7\n", record.Entry{
			Format: record.FormatJournal, Priority: 8 + 3, Tag: []byte("app"), ClaimedPID: 42, Message: []byte("hello"),
			Fields: recordtest.Fields("CODE_FILE", "main.c", "CODE_LINE", "7")}},
		{"facility", "PRIORITY=6\nSYSLOG_FACILITY=3\nMESSAGE=x\n", record.Entry{
			Format: record.FormatJournal, Priority: 3<<3 | 6, Message: []byte("x")}},
		{"binary-safe message", bin("MESSAGE", "two\nlines\x00") + "PRIORITY=4\n", record.Entry{
			Format: record.FormatJournal, Priority: 8 + 4, Message: []byte("two\nlines\x00")}},
		{"binary-safe first, empty value", bin("FOO", "") + "MESSAGE=m\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("m"), Fields: recordtest.Fields("FOO", "")}},
		{"no priority", "MESSAGE=x\nSYSLOG_FACILITY=4\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("x"), Fields: recordtest.Fields("SYSLOG_FACILITY", "4")}},
		{"unmappable values stay fields", "PRIORITY=9\nSYSLOG_PID=abc\nSYSLOG_FACILITY=24\nMESSAGE=x\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("x"),
			Fields: recordtest.Fields("PRIORITY", "9", "SYSLOG_PID", "abc", "SYSLOG_FACILITY", "24")}},
		{"repeated fields", "MESSAGE=a\nMESSAGE=b\nSYSLOG_IDENTIFIER=t1\nSYSLOG_IDENTIFIER=t2\nPRIORITY=1\nPRIORITY=2\n", record.Entry{
			Format: record.FormatJournal, Priority: 8 + 1, Tag: []byte("t1"), Message: []byte("a"),
			Fields: recordtest.Fields("MESSAGE", "b", "SYSLOG_IDENTIFIER", "t2", "PRIORITY", "2")}},
		{"trusted fields dropped", "_PID=1\nMESSAGE=x\n_UNPARSED=forged\nPRIORITY=6\n", record.Entry{
			Format: record.FormatJournal, Priority: 14, Message: []byte("x")}},
		{"empty lines skipped, value with '='", "A=b=c\n\n\nMESSAGE=\nPRIORITY=0\n", record.Entry{
			Format: record.FormatJournal, Priority: 8, Fields: recordtest.Fields("A", "b=c")}},
		{"SYSLOG_TIMESTAMP kept", "SYSLOG_TIMESTAMP=Nov 24 22:31:11 \nMESSAGE=x\nPRIORITY=6\n", record.Entry{
			Format: record.FormatJournal, Priority: 14, Message: []byte("x"), Fields: recordtest.Fields("SYSLOG_TIMESTAMP", "Nov 24 22:31:11 ")}},
		{"invalid utf-8 message", "MESSAGE=\xff\nPRIORITY=6\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagInvalidUTF8, Priority: 14, Message: []byte("\xff")}},
		// Damage after the first field.
		{"last line without newline", "PRIORITY=6\nMESSAGE=hi", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed, Priority: 14, Message: []byte("hi")}},
		{"bad name", "MESSAGE=hi\nlower=x\nPRIORITY=6\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("hi"),
			Fields: recordtest.Fields("_UNPARSED", "lower=x\nPRIORITY=6\n")}},
		{"name too long", "MESSAGE=hi\n" + strings.Repeat("A", 65) + "=x\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("hi"),
			Fields: recordtest.Fields("_UNPARSED", strings.Repeat("A", 65)+"=x\n")}},
		{"lying binary length", "MESSAGE=hi\nBLOB\n\xff\x00\x00\x00\x00\x00\x00\x00abc\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("hi"),
			Fields: recordtest.Fields("_UNPARSED", "BLOB\n\xff\x00\x00\x00\x00\x00\x00\x00abc\n")}},
		{"huge binary length", "MESSAGE=hi\nBLOB\n\xff\xff\xff\xff\xff\xff\xff\xffabc\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("hi"),
			Fields: recordtest.Fields("_UNPARSED", "BLOB\n\xff\xff\xff\xff\xff\xff\xff\xffabc\n")}},
		{"truncated binary length", "MESSAGE=hi\nBLOB\n\x03\x00", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("hi"),
			Fields: recordtest.Fields("_UNPARSED", "BLOB\n\x03\x00")}},
		{"binary value without newline at end", "MESSAGE=hi\nBLOB\n\x03\x00\x00\x00\x00\x00\x00\x00abc", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("hi"),
			Fields: recordtest.Fields("BLOB", "abc")}},
		{"binary value followed by junk", "MESSAGE=hi\nBLOB\n\x03\x00\x00\x00\x00\x00\x00\x00abcXYZ=1\n", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("hi"),
			Fields: recordtest.Fields("BLOB", "abc", "_UNPARSED", "XYZ=1\n")}},
		{"name without '=' or newline", "MESSAGE=hi\nFOO", record.Entry{
			Format: record.FormatJournal, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("hi"),
			Fields: recordtest.Fields("_UNPARSED", "FOO")}},
	})
}

func TestParseJSON(t *testing.T) {
	runParseTests(t, []parseTest{
		{"slog JSONHandler", `{"time":"2026-11-24T22:31:11.123456789+01:00","level":"WARN","msg":"disk low","free":12,"path":"/var"}` + "\n", record.Entry{
			Format: record.FormatJSON, Priority: 8 + 4, SourceTime: wantTime(t, "2026-11-24T21:31:11.123456789Z"), Message: []byte("disk low"),
			Fields: recordtest.Fields("free", "12", "path", "/var")}},
		{"zap production", `{"level":"error","ts":1795473071.5,"caller":"main.go:12","msg":"boom","logger":"db"}`, record.Entry{
			Format: record.FormatJSON, Priority: 8 + 3, SourceTime: 1795473071_500000000, Tag: []byte("db"), Message: []byte("boom"),
			Fields: recordtest.Fields("caller", "main.go:12")}},
		{"pino", `{"level":30,"time":1795473071123,"pid":4242,"hostname":"vm","msg":"hello"}`, record.Entry{
			Format: record.FormatJSON, Priority: 8 + 6, SourceTime: 1795473071_123000000, ClaimedPID: 4242, Hostname: []byte("vm"), Message: []byte("hello")}},
		{"syslog numbers and names", `{"severity":2,"message":"m","app":"a","host":"h"}`, record.Entry{
			Format: record.FormatJSON, Priority: 8 + 2, Tag: []byte("a"), Hostname: []byte("h"), Message: []byte("m")}},
		{"no level", `{"msg":"m"}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("m")}},
		{"unknown level stays a field", `{"level":"verbose","msg":"m"}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("m"), Fields: recordtest.Fields("level", "verbose")}},
		{"wrong types stay fields", `{"msg":5,"pid":"7","time":"yesterday","tag":null,"ts":-1,"level":true}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13,
			Fields: recordtest.Fields("msg", "5", "pid", "7", "time", "yesterday", "tag", "null", "ts", "-1", "level", "true")}},
		{"first of duplicates maps", `{"msg":"a","message":"b","level":"info","severity":"error"}`, record.Entry{
			Format: record.FormatJSON, Priority: 14, Message: []byte("a"), Fields: recordtest.Fields("message", "b", "severity", "error")}},
		{"escapes", `{"msg":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00\ud800x","k\u0041":"v"}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("a\"b\\c/d\n\té😀\uFFFDx"), Fields: recordtest.Fields("kA", "v")}},
		{"nested kept as raw JSON", `{"msg":"m", "req": {"id": [1, 2, {"a": null}]} , "ok" : true}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("m"),
			Fields: recordtest.Fields("req", `{"id": [1, 2, {"a": null}]}`, "ok", "true")}},
		{"numbers", `{"a":0,"b":-1.5e+10,"c":2E-3}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13, Fields: recordtest.Fields("a", "0", "b", "-1.5e+10", "c", "2E-3")}},
		{"empty object", "{}\r\n", record.Entry{Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13}},
		{"epoch microseconds", `{"ts":1795473071123456}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13, SourceTime: 1795473071_123456000}},
		{"epoch nanoseconds", `{"ts":1795473071123456789}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13, SourceTime: 1795473071_123456789}},
		{"epoch exponent not mapped", `{"ts":1.7e9}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13, Fields: recordtest.Fields("ts", "1.7e9")}},
		{"invalid utf-8 in string", "{\"msg\":\"\xff\"}", record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority | record.FlagInvalidUTF8, Priority: 13, Message: []byte("\xff")}},
		{"depth 64 accepted", `{"a":` + strings.Repeat("[", 63) + strings.Repeat("]", 63) + `}`, record.Entry{
			Format: record.FormatJSON, Flags: record.FlagDefaultPriority, Priority: 13,
			Fields: recordtest.Fields("a", strings.Repeat("[", 63)+strings.Repeat("]", 63))}},
		// Invalid JSON: the whole datagram is a malformed raw message.
		{"depth 65 rejected", `{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13,
			Message: []byte(`{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`)}},
		{"truncated", `{"msg":"hi`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte(`{"msg":"hi`)}},
		{"trailing garbage", `{"msg":"hi"} x` + "\n", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte(`{"msg":"hi"} x`)}},
		{"trailing comma", `{"msg":"hi",}`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte(`{"msg":"hi",}`)}},
		{"control character", "{\"msg\":\"a\tb\"}", record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte("{\"msg\":\"a\tb\"}")}},
		{"bad escape", `{"msg":"\x"}`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte(`{"msg":"\x"}`)}},
		{"leading zero", `{"a":01}`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte(`{"a":01}`)}},
		{"bare word", `{"a":nul}`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte(`{"a":nul}`)}},
		{"single quotes", `{'a':1}`, record.Entry{
			Format: record.FormatRaw, Flags: record.FlagMalformed | record.FlagDefaultPriority, Priority: 13, Message: []byte(`{'a':1}`)}},
	})
}

func TestParseLevel(t *testing.T) {
	tests := map[string]int{ // -1: not a level
		"0": 0, "7": 7, "8": -1, "10": 7, "20": 7, "30": 6, "40": 4, "50": 3, "60": 2, "70": -1, "07": -1,
		"EMERG": 0, "panic": 0, "Alert": 1, "crit": 2, "CRITICAL": 2, "fatal": 2, "dpanic": 2, "err": 3, "ERROR": 3,
		"warn": 4, "Warning": 4, "notice": 5, "INFO": 6, "informational": 6, "debug": 7, "TRACE": 7,
		"": -1, "informationall": -1, "verbose": -1, "-1": -1,
	}
	for in, want := range tests {
		sev, ok := parseLevel([]byte(in))
		got := int(sev)
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("parseLevel(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestParseEpoch(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1795473071", 1795473071e9, true},
		{"1795473071.000000001", 1795473071e9 + 1, true},
		{"1795473071.1234567891", 1795473071e9 + 123456789, true},
		{"9223372035", 9223372035e9, true},                 // largest second count that fits
		{"9223372037", 0, false},                           // seconds beyond 2262
		{"99999999999", 0, false},                          // seconds beyond 2262
		{"100000000000", 100000000000e6, true},             // from 1e11: milliseconds
		{"100000000000000", 100000000000000e3, true},       // from 1e14: microseconds
		{"100000000000000000", 100000000000000000, true},   // from 1e17: nanoseconds
		{"9223372036854775807", 9223372036854775807, true}, // ns at the int64 limit
		{"9223372036854775808", 0, false},
		{"12345678901234567890", 0, false},
		{"1.5e9", 0, false},
		{"-1", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseEpoch([]byte(tt.in))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseEpoch(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestParseYearInference(t *testing.T) {
	cet := time.FixedZone("CET", 3600)
	tests := []struct {
		now, in string
		loc     *time.Location
		want    string
	}{
		{"2026-11-24T22:31:30Z", "Nov 24 22:31:11", time.UTC, "2026-11-24T22:31:11Z"},
		{"2027-01-01T00:00:05Z", "Dec 31 23:59:59", time.UTC, "2026-12-31T23:59:59Z"}, // last year
		{"2026-12-31T23:59:59Z", "Jan  1 00:00:01", time.UTC, "2027-01-01T00:00:01Z"}, // clock skew: next year
		{"2026-06-15T12:00:00Z", "Dec 15 12:00:00", time.UTC, "2025-12-15T12:00:00Z"}, // 6 months back is nearer than 6 ahead
		{"2026-11-24T22:31:30Z", "Feb 29 12:00:00", time.UTC, "2028-02-29T12:00:00Z"}, // nearest leap year
		{"2025-01-10T00:00:00Z", "Feb 29 12:00:00", time.UTC, "2024-02-29T12:00:00Z"}, // nearest leap year, behind
		{"2026-11-24T22:31:30Z", "Nov 24 22:31:11", cet, "2026-11-24T21:31:11Z"},      // local time
		{"2026-12-31T23:30:00Z", "Jan  1 00:30:00", cet, "2026-12-31T23:30:00Z"},      // year boundary in local zone
	}
	for _, tt := range tests {
		now, _ := time.Parse(time.RFC3339, tt.now)
		p := &Parser{Now: func() time.Time { return now }, Location: tt.loc}
		got, n, ok := p.parseStamp([]byte(tt.in))
		if !ok || n != len(tt.in) {
			t.Errorf("now %s: parseStamp(%q) = %d, %d, %v", tt.now, tt.in, got, n, ok)
			continue
		}
		if g := time.Unix(0, got).UTC().Format(time.RFC3339); g != tt.want {
			t.Errorf("now %s, %s: parseStamp(%q) = %s, want %s", tt.now, tt.loc, tt.in, g, tt.want)
		}
	}
}

// TestParseResetsEntry checks that nothing from a previous datagram, nor
// credentials set by the receiver, survives a Parse.
func TestParseResetsEntry(t *testing.T) {
	p := newParserForTest()
	e := record.Entry{Flags: record.FlagCreds, PID: 1, UID: 2, GID: 3}
	p.Parse([]byte(`<13>1 - h a 12 m [x a="\"b"] msg`), &e)
	p.Parse([]byte("plain"), &e)
	want := record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority, Priority: 13, Message: []byte("plain")}
	recordtest.Check(t, []byte("plain"), &e, &want)
}

// TestParseUsesDefaults checks that the zero Parser reads RFC 3164
// timestamps in time.Local near time.Now.
func TestParseUsesDefaults(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	in := []byte("<13>" + now.Format(time.Stamp) + " app: hi")
	var p Parser
	var e record.Entry
	p.Parse(in, &e)
	if e.SourceTime != now.UnixNano() {
		t.Errorf("Parse(%q) SourceTime = %v, want %v", in, time.Unix(0, e.SourceTime), now)
	}
}

// TestParseScratchGrowth parses datagrams whose rewritten bytes outgrow the
// scratch buffer mid-parse: earlier slices must keep their values.
func TestParseScratchGrowth(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<13>1 - - - - - `)
	var want []string
	for i := range 40 {
		id := fmt.Sprintf("id%02d@%s", i, strings.Repeat("x", 20))
		fmt.Fprintf(&b, `[%s p="v\]%d"]`, id, i)
		want = append(want, id+".p", fmt.Sprintf("v]%d", i))
	}
	b.WriteString(" m")
	p := newParserForTest()
	var e record.Entry
	in := []byte(b.String())
	p.Parse(in, &e)
	recordtest.Check(t, in, &e, &record.Entry{Format: record.FormatRFC5424, Priority: 13, Message: []byte("m"), Fields: recordtest.Fields(want...)})
}

func TestParseZeroAllocs(t *testing.T) {
	p := newParserForTest()
	e := record.Entry{Fields: make([]record.Field, 0, 16)}
	for _, s := range ingesttest.Samples {
		in := []byte(s.Data)
		p.Parse(in, &e) // grow scratch once
		if n := testing.AllocsPerRun(100, func() { p.Parse(in, &e) }); n != 0 {
			t.Errorf("%s: %v allocs per Parse, want 0", s.Name, n)
		}
	}
}

// TestParseJSONUnescapeMatchesEncodingJSON decodes tricky strings both ways.
func TestParseJSONUnescapeMatchesEncodingJSON(t *testing.T) {
	p := newParserForTest()
	var e record.Entry
	for _, lit := range []string{
		`""`, `"plain"`, `"\"\\\/\b\f\n\r\t"`, `"\u0000\u001f\u007f"`, `"\u00e9\u20ac"`,
		`"\ud83d\ude00"`, `"\uD83D\uDE00"`, `"\ud800"`, `"\udc00"`, `"\ud800\u0041"`, `"\ud800\ud800\udc00"`,
		`"\udbff\udfff"`, `"x\ud83dy"`, `"é€😀"`, `"\\u0041"`,
	} {
		var want string
		if err := json.Unmarshal([]byte(lit), &want); err != nil {
			t.Fatalf("encoding/json rejects %s: %v", lit, err)
		}
		in := []byte(`{"msg":` + lit + `}`)
		p.Parse(in, &e)
		if e.Format != record.FormatJSON || string(e.Message) != want {
			t.Errorf("Parse(%s): format %v, message %q; want json, %q", in, e.Format, e.Message, want)
		}
	}
}
