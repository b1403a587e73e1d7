package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/record"
)

func sampleEntry() *record.Entry {
	return &record.Entry{
		Flags:    record.FlagCreds | record.FlagTruncated,
		Priority: 4<<3 | 3, // auth.err
		PID:      42, UID: 1000, GID: 100, ClaimedPID: 7,
		Tag:     []byte("sshd"),
		Message: []byte("bad \xff byte\x00 and \"quotes\"\nsecond line"),
		Fields:  []record.Field{{Key: []byte("zoo@123.tiger"), Value: []byte("hungry")}},
		Origin:  record.Origin{Comm: []byte("sshd"), Exe: []byte("/usr/sbin/sshd"), Unit: []byte("ssh.service")},
	}
}

func TestFormatShort(t *testing.T) {
	ts := time.Date(2026, 11, 24, 22, 31, 11, 123456789, time.UTC).UnixNano()
	f := formatter{format: outShort, hostname: "box", loc: time.UTC}
	got := string(f.appendRecord(nil, 9, ts, sampleEntry()))
	want := "Nov 24 22:31:11 box sshd[42]: bad \\xff byte\\x00 and \"quotes\"\nsecond line\n"
	if got != want {
		t.Fatalf("short:\n got %q\nwant %q", got, want)
	}
	f.format = outShortISO
	f.color = true
	got = string(f.appendRecord(nil, 9, ts, sampleEntry()))
	if !strings.HasPrefix(got, "2026-11-24T22:31:11.123456Z box sshd[42]: \x1b[1;31mbad") || !strings.HasSuffix(got, "\x1b[0m\n") {
		t.Fatalf("short-iso with colour: %q", got)
	}
	// Without a tag, the trusted comm names the sender, as in journalctl.
	f.format, f.color = outShort, false
	e := sampleEntry()
	e.Tag, e.Origin.Comm = nil, []byte("demo")
	if got := string(f.appendRecord(nil, 9, ts, e)); !strings.HasPrefix(got, "Nov 24 22:31:11 box demo[42]: ") {
		t.Fatalf("short, no tag, comm demo: %q", got)
	}
	e.Origin.Comm = nil
	if got := string(f.appendRecord(nil, 9, ts, e)); !strings.HasPrefix(got, "Nov 24 22:31:11 box -[42]: ") {
		t.Fatalf("short, no tag, no comm: %q", got)
	}
	f.format = outCat
	if got := string(f.appendRecord(nil, 9, ts, sampleEntry())); got != "bad \\xff byte\\x00 and \"quotes\"\nsecond line\n" {
		t.Fatalf("raw: %q", got)
	}
}

func TestFormatJSON(t *testing.T) {
	ts := time.Date(2026, 11, 24, 22, 31, 11, 123456789, time.UTC).UnixNano()
	f := formatter{format: outJSON, loc: time.UTC}
	line := f.appendRecord(nil, 9, ts, sampleEntry())
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("not JSON: %v: %s", err, line)
	}
	want := map[string]any{
		"seq": 9.0, "time": "2026-11-24T22:31:11.123456789Z", "priority": 3.0, "facility": 4.0,
		"pid": 42.0, "uid": 1000.0, "gid": 100.0, "claimed_pid": 7.0, "tag": "sshd",
		"message":   "bad \\xff byte\x00 and \"quotes\"\nsecond line",
		"fields":    map[string]any{"zoo@123.tiger": "hungry"},
		"truncated": true,
		"comm":      "sshd", "exe": "/usr/sbin/sshd", "unit": "ssh.service",
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || !jsonEqual(g, v) {
			t.Errorf("%s = %#v, want %#v", k, g, v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("keys %v, want %d keys", got, len(want))
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
