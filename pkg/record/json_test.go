package record

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/json.golden from AppendJSON's output")

// jsonSamples cover every key AppendJSON writes and every escape.
func jsonSamples() []struct {
	seq uint64
	ts  int64
	e   Entry
} {
	ts := time.Date(2026, 11, 24, 22, 31, 11, 123456789, time.UTC).UnixNano()
	return []struct {
		seq uint64
		ts  int64
		e   Entry
	}{
		{1, ts, Entry{Priority: DefaultPriority, Message: []byte("plain text")}},
		{2, ts, Entry{Format: FormatRFC3164, Flags: FlagCreds, Priority: 4<<3 | 3, PID: 42, UID: 1000, GID: 100,
			ClaimedPID: 7, Tag: []byte("sshd"), Message: []byte("Failed password for root")}},
		{3, ts + 1, Entry{Format: FormatRFC5424, Flags: FlagCreds | FlagTruncated, Priority: 16<<3 | 6,
			SourceTime: time.Date(2026, 11, 24, 23, 31, 11, 0, time.FixedZone("", 3600)).UnixNano(),
			Hostname:   []byte("vm"), Tag: []byte("app"), MsgID: []byte("MID"), Message: []byte("cut sh"),
			Fields: []Field{{Key: []byte("timeQuality.tzKnown"), Value: []byte("1")}, {Key: []byte("zoo@123.tiger"), Value: []byte("hungry")}}}},
		{4, ts, Entry{Format: FormatRaw, Flags: FlagMalformed | FlagInvalidUTF8, Priority: 13,
			Message: []byte("bad \xff byte\x00 \"quotes\" back\\slash\nline\ttab\rcr \x1b[31m \u2028 é 日本")}},
		{5, ts, Entry{Format: FormatJournal, Priority: 6, Message: []byte("x"),
			Fields: []Field{{Key: []byte("CODE_LINE"), Value: []byte("7")}, {Key: []byte("CODE_LINE"), Value: []byte("8")}, {Key: []byte("EMPTY")}}}},
		{6, ts, Entry{Format: FormatRFC3164, Flags: FlagCreds, Priority: 13, PID: 4242, UID: 0, GID: 0,
			Tag: []byte("demo"), Message: []byte("from a unit"),
			Origin: Origin{Comm: []byte("demo"), Exe: []byte("/usr/bin/demo"), Unit: []byte("user@1000.service"),
				UserUnit: []byte("app.service"), Slice: []byte("user-1000.slice"),
				Cgroup: []byte("/user.slice/user-1000.slice/user@1000.service/app.slice/app.service")}}},
		{7, ts, Entry{Format: FormatRaw, Flags: FlagCreds, Priority: 13, PID: 9, Message: []byte("exited sender: comm only"),
			Fields: []Field{{Key: []byte("comm"), Value: []byte("sender-supplied")}},
			Origin: Origin{Comm: []byte("qu\"ote\xff")}}},
		{1 << 63, 0, Entry{}},
	}
}

// The JSON of a record is a contract with users (logctl tail -o json) and
// with consumers of forwarded records: it changes only on purpose.
func TestAppendJSONGolden(t *testing.T) {
	var out []byte
	for _, s := range jsonSamples() {
		line := AppendJSON(nil, s.seq, s.ts, &s.e)
		var v map[string]any
		if err := json.Unmarshal(line, &v); err != nil {
			t.Errorf("seq %d: not JSON: %v\n%s", s.seq, err, line)
		}
		out = append(append(out, line...), '\n')
	}
	golden := filepath.Join("testdata", "json.golden")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestAppendJSONGolden -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("AppendJSON output differs from %s (go test -update rewrites it after a deliberate change):\ngot:\n%s\nwant:\n%s", golden, out, want)
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	samples := jsonSamples()
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendJSON(buf[:0], 3, samples[2].ts, &samples[2].e) }); n != 0 {
		t.Errorf("AppendJSON: %v allocations, want 0", n)
	}
}
