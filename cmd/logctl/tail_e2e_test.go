//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/origin"
	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/query"
)

// seqMsg is the message of the record the tests expect at seq.
func seqMsg(seq uint64) string { return fmt.Sprintf("m%06d", seq) }

// sendNumbered sends n records whose messages name the sequence numbers
// they will get, and waits until they are stored.
func sendNumbered(t *testing.T, d *proctest.Daemon, n int) {
	t.Helper()
	_, head := proctest.RingState(t, d.Ring)
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = "<13>seqtest: " + seqMsg(head+uint64(i))
	}
	d.Send(t, msgs...)
}

// checkNumbered requires recs to be exactly the records want, in order,
// each carrying the message sendNumbered gave it.
func checkNumbered(t *testing.T, what string, recs []jsonRecord, want []uint64) {
	t.Helper()
	if got := seqs(recs); !slices.Equal(got, want) {
		t.Fatalf("%s: got %d records %s, want %d records %s", what, len(got), span(got), len(want), span(want))
	}
	for _, r := range recs {
		if r.Message != seqMsg(r.Seq) || r.Tag != "seqtest" {
			t.Fatalf("%s: record %d is %q/%q, want seqtest/%q", what, r.Seq, r.Tag, r.Message, seqMsg(r.Seq))
		}
	}
}

// span describes a list of sequence numbers briefly.
func span(s []uint64) string {
	switch {
	case len(s) == 0:
		return "[]"
	case len(s) <= 6:
		return fmt.Sprint(s)
	}
	return fmt.Sprintf("[%d %d %d ... %d %d %d]", s[0], s[1], s[2], s[len(s)-3], s[len(s)-2], s[len(s)-1])
}

// TestTailLatestN: `tail -n N` prints exactly the latest N records, oldest
// first, before and after the ring wrapped, over TCP, over the local socket
// and with --ring; more than the ring holds (-n all, -n 10000000) gives
// everything it holds, the same everywhere.
func TestTailLatestN(t *testing.T) {
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{RingSize: "256KiB"}) // holds 2048 records
	sources := map[string][]string{"tcp": {"--addr", d.QueryAddr}, "local": {"--addr", query.UnixPrefix + d.QuerySocket}, "ring": {"--ring", d.Ring}}
	// check runs tail -n n (n < 0: without -n, which means 10).
	check := func(n int64) {
		t.Helper()
		oldest, head := proctest.RingState(t, d.Ring)
		latest := uint64(10)
		if n >= 0 {
			latest = uint64(n)
		}
		want := seqRange(max(oldest, head-min(latest, head)), head)
		for name, src := range sources {
			args := append([]string{"tail", "-o", "json"}, src...)
			if n >= 0 {
				args = append(args, "-n", strconv.FormatInt(n, 10))
			}
			recs, _ := parseJSON(t, ok(t, args...))
			checkNumbered(t, fmt.Sprintf("%s -n %d (ring holds %d..%d)", name, n, oldest, head-1), recs, want)
		}
	}

	const k = 100
	sendNumbered(t, d, k)
	for _, n := range []int64{-1, 0, 1, 10, k - 1, k, k + 1, 100_000} {
		check(n)
	}

	// Wrap the ring several times over.
	sendNumbered(t, d, 5_000)
	oldest, head := proctest.RingState(t, d.Ring)
	if oldest <= k+1 {
		t.Fatalf("ring did not wrap: it holds %d..%d", oldest, head-1)
	}
	held := int64(head - oldest)
	for _, n := range []int64{-1, 0, 1, 10, held - 1, held, held + 1} {
		check(n)
	}
	var first string
	for _, n := range []string{"all", "10000000"} {
		for name, src := range sources {
			out := ok(t, append([]string{"tail", "-o", "json", "-n", n}, src...)...)
			recs, _ := parseJSON(t, out)
			checkNumbered(t, fmt.Sprintf("%s -n %s (ring holds %d..%d)", name, n, oldest, head-1), recs, seqRange(oldest, head))
			if first == "" {
				first = out
			} else if out != first {
				t.Errorf("%s -n %s printed other lines than the first source", name, n)
			}
		}
	}
}

// sent is what a test sent, to compute which records a query must print.
type sent struct {
	seq      uint64
	tag, msg string
	sev, fac int
	pid, uid int
	fields   map[string]string
}

// dataset sends records of various priorities, tags, senders (two uids,
// several pids) and formats to d and returns them in sequence order.
func dataset(t *testing.T, d *proctest.Daemon) []sent {
	t.Helper()
	var out []sent
	me := func(seq uint64, tag, msg string, sev, fac int) sent {
		return sent{seq: seq, tag: tag, msg: msg, sev: sev, fac: fac, pid: os.Getpid(), uid: os.Getuid()}
	}
	// 25 records tagged many, every severity, facility user.
	var msgs []string
	for i := range 25 {
		msgs = append(msgs, fmt.Sprintf("<%d>many: many %d", 8+i%8, i))
	}
	first := d.Send(t, msgs...)
	for i := range 25 {
		out = append(out, me(first+uint64(i), "many", fmt.Sprintf("many %d", i), i%8, 1))
	}
	// local0 records.
	for _, sev := range []int{3, 4, 6} {
		msg := fmt.Sprintf("local0 sev %d failed", sev)
		seq := d.Send(t, fmt.Sprintf("<%d>other: %s", 16<<3|sev, msg))
		out = append(out, me(seq, "other", msg, sev, 16))
	}
	// Another user and other processes.
	cred, uid := asNobody(), os.Getuid()
	if cred != nil {
		uid = nobody
	}
	pid, seq := d.Logger(t, cred, "-t", "nobodyapp", "-p", "user.err", "from nobody")
	out = append(out, sent{seq: seq, tag: "nobodyapp", msg: "from nobody", sev: 3, fac: 1, pid: pid, uid: uid})
	pid, seq = d.Logger(t, cred, "-t", "nobodyapp", "-p", "user.info", "nobody info")
	out = append(out, sent{seq: seq, tag: "nobodyapp", msg: "nobody info", sev: 6, fac: 1, pid: pid, uid: uid})
	pid, seq = d.Logger(t, nil, "-t", "rootapp", "-p", "daemon.warning", "from us")
	out = append(out, sent{seq: seq, tag: "rootapp", msg: "from us", sev: 4, fac: 3, pid: pid, uid: os.Getuid()})
	// RFC 5424 structured data.
	for _, v := range []string{"hungry", "sleepy"} {
		pid, seq := d.Logger(t, nil, "--rfc5424", "--sd-id", "zoo@123", "--sd-param", `tiger="`+v+`"`, "-t", "zoo", "-p", "local1.notice", "tiger is "+v)
		out = append(out, sent{seq: seq, tag: "zoo", msg: "tiger is " + v, sev: 5, fac: 17, pid: pid, uid: os.Getuid(),
			fields: map[string]string{"zoo@123.tiger": v, "timeQuality.tzKnown": "1"}})
	}
	// JSON.
	seq = d.Send(t, `{"msg":"json record","level":"warning","app":"jsonapp","trace_id":"4bf92f35","user":{"id":7}}`)
	s := me(seq, "jsonapp", "json record", 4, 1)
	s.fields = map[string]string{"trace_id": "4bf92f35", "user": `{"id":7}`}
	out = append(out, s)
	// Not UTF-8.
	seq = d.Send(t, "<13>bin: bad \xff\xfe bytes")
	out = append(out, me(seq, "bin", `bad \xff\xfe bytes`, 5, 1))
	return out
}

// TestTailFilters: each filter flag, alone and combined, prints exactly the
// records that match, over TCP and with --ring.
func TestTailFilters(t *testing.T) {
	d := startDaemon(t, openDir(t), proctest.DaemonOptions{})
	all := dataset(t, d)
	byTag := func(tag string) sent {
		for _, s := range all {
			if s.tag == tag {
				return s
			}
		}
		t.Fatalf("no %s record", tag)
		return sent{}
	}
	nobodyErr, zoo := byTag("nobodyapp"), byTag("zoo")
	me := strconv.Itoa(os.Getpid())
	otherUID := strconv.Itoa(nobodyErr.uid)
	for _, tc := range []struct {
		args []string
		keep func(s sent) bool
		last int // only the latest this many (0: all)
	}{
		{[]string{"-p", "err"}, func(s sent) bool { return s.sev <= 3 }, 0},
		{[]string{"-p", "3"}, func(s sent) bool { return s.sev <= 3 }, 0},
		{[]string{"--priority", "warning"}, func(s sent) bool { return s.sev <= 4 }, 0},
		{[]string{"-p", "emerg"}, func(s sent) bool { return s.sev == 0 }, 0},
		{[]string{"-p", "debug"}, func(s sent) bool { return true }, 0},
		{[]string{"-t", "many"}, func(s sent) bool { return s.tag == "many" }, 0},
		{[]string{"--tag", "nosuch"}, func(s sent) bool { return false }, 0},
		{[]string{"--pid", strconv.Itoa(nobodyErr.pid)}, func(s sent) bool { return s.pid == nobodyErr.pid }, 0},
		{[]string{"--pid", me}, func(s sent) bool { return s.pid == os.Getpid() }, 0},
		{[]string{"--uid", otherUID}, func(s sent) bool { return s.uid == nobodyErr.uid }, 0},
		{[]string{"--uid", strconv.Itoa(os.Getuid())}, func(s sent) bool { return s.uid == os.Getuid() }, 0},
		{[]string{"--field", "zoo@123.tiger=hungry"}, func(s sent) bool { return s.fields["zoo@123.tiger"] == "hungry" }, 0},
		{[]string{"--field", "zoo@123.tiger=hungry", "--field", "timeQuality.tzKnown=1"}, func(s sent) bool { return s.seq == zoo.seq }, 0},
		{[]string{"--field", "zoo@123.tiger=hungry", "--field", "timeQuality.tzKnown=0"}, func(s sent) bool { return false }, 0},
		{[]string{"--field", "trace_id=4bf92f35"}, func(s sent) bool { return s.tag == "jsonapp" }, 0},
		{[]string{"--field", `user={"id":7}`}, func(s sent) bool { return s.tag == "jsonapp" }, 0},
		{[]string{"--field", "zoo@123.tiger=hungr"}, func(s sent) bool { return false }, 0},
		{[]string{"-g", "^many 1[0-9]$"}, func(s sent) bool { return regexp.MustCompile("^many 1[0-9]$").MatchString(s.msg) }, 0},
		{[]string{"--grep", "fail(ed|ure)"}, func(s sent) bool { return strings.Contains(s.msg, "failed") }, 0},
		{[]string{"-g", "^bad .. bytes$"}, func(s sent) bool { return s.tag == "bin" }, 0}, // an invalid byte is one character
		// Combinations.
		{[]string{"-p", "err", "-t", "many"}, func(s sent) bool { return s.tag == "many" && s.sev <= 3 }, 0},
		{[]string{"-t", "many", "-g", "^many 2"}, func(s sent) bool { return s.tag == "many" && strings.HasPrefix(s.msg, "many 2") }, 0},
		{[]string{"--uid", otherUID, "-p", "err"}, func(s sent) bool { return s.seq == nobodyErr.seq }, 0},
		{[]string{"--pid", strconv.Itoa(nobodyErr.pid), "--uid", otherUID}, func(s sent) bool { return s.seq == nobodyErr.seq }, 0},
		{[]string{"--pid", strconv.Itoa(nobodyErr.pid), "--uid", strconv.Itoa(zoo.uid + 1)}, func(s sent) bool { return false }, 0},
		// Equal values for --pid and --uid are still two conditions.
		{[]string{"--pid", strconv.Itoa(os.Getuid()), "--uid", strconv.Itoa(os.Getuid())}, func(s sent) bool { return s.pid == os.Getuid() && s.uid == os.Getuid() }, 0},
		{[]string{"--pid", me, "--uid", me}, func(s sent) bool { return s.pid == os.Getpid() && s.uid == os.Getpid() }, 0},
		{[]string{"-p", "notice", "--field", "zoo@123.tiger=sleepy", "-t", "zoo"}, func(s sent) bool { return s.fields["zoo@123.tiger"] == "sleepy" }, 0},
		// The latest N of the matching records.
		{[]string{"-t", "many", "-n", "10"}, func(s sent) bool { return s.tag == "many" }, 10},
		{[]string{"-p", "err", "-n", "3"}, func(s sent) bool { return s.sev <= 3 }, 3},
		{[]string{"-t", "many", "-n", "0"}, func(s sent) bool { return false }, 0},
	} {
		var want []sent
		for _, s := range all {
			if tc.keep(s) {
				want = append(want, s)
			}
		}
		if tc.last > 0 && len(want) > tc.last {
			want = want[len(want)-tc.last:]
		}
		for _, src := range [][]string{{"--addr", d.QueryAddr}, {"--ring", d.Ring}} {
			args := append(append([]string{"tail", "-o", "json"}, src...), tc.args...)
			if !slices.Contains(tc.args, "-n") {
				args = append(args, "-n", "1000")
			}
			recs, _ := parseJSON(t, ok(t, args...))
			var got, wantDesc []string
			for _, r := range recs {
				got = append(got, fmt.Sprintf("%d:%s:%s", r.Seq, r.Tag, r.Message))
			}
			for _, s := range want {
				wantDesc = append(wantDesc, fmt.Sprintf("%d:%s:%s", s.seq, s.tag, s.msg))
			}
			if !slices.Equal(got, wantDesc) {
				t.Errorf("tail %q:\n got %q\nwant %q", args[1:], got, wantDesc)
			}
		}
	}
	if nobodyErr.uid == os.Getuid() {
		t.Log("not root: --uid was tested with one uid only")
	}
}

// TestTailJSONFields: every key of -o json, for records with and without
// credentials, fields and truncation; bytes that are not UTF-8 are escaped
// visibly, never dropped or replaced.
func TestTailJSONFields(t *testing.T) {
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{})
	before := time.Now()
	seq := d.Send(t,
		"<166>Nov 24 22:31:11 box app[4242]: hello \"world\"\twith tab",
		"<13>bin: bad \xff\xfe and \x01 ctl and é",
		`{"msg":"json","level":"err","app":"japp","trace_id":"abc","n":7}`,
		"<13>big: "+strings.Repeat("x", 150_000),
	)
	after := time.Now()
	lines := strings.Split(strings.TrimSuffix(ok(t, "tail", "--addr", d.QueryAddr, "-o", "json"), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("got %d lines, want 4:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	var got []map[string]any
	for _, l := range lines {
		if !utf8.ValidString(l) || !json.Valid([]byte(l)) {
			t.Fatalf("not valid UTF-8 JSON: %q", l)
		}
		var m map[string]any
		json.Unmarshal([]byte(l), &m)
		tm, err := time.Parse(time.RFC3339Nano, m["time"].(string))
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$`).MatchString(m["time"].(string)) || err != nil ||
			tm.Before(before.Truncate(time.Microsecond)) || tm.After(after) {
			t.Errorf("time %v (%v): want RFC 3339 with 9 fraction digits, UTC, between %v and %v", m["time"], err, before, after)
		}
		delete(m, "time")
		got = append(got, m)
	}
	cred := map[string]any{"pid": float64(os.Getpid()), "uid": float64(os.Getuid()), "gid": float64(os.Getgid())}
	for k, v := range ownOrigin(t) {
		cred[k] = v
	}
	with := func(m map[string]any) map[string]any {
		for k, v := range cred {
			m[k] = v
		}
		return m
	}
	year := time.Now().Year()
	want := []map[string]any{
		with(map[string]any{"seq": float64(seq), "priority": 6.0, "facility": 20.0, "claimed_pid": 4242.0,
			"hostname": "box", "tag": "app", "message": "hello \"world\"\twith tab"}),
		with(map[string]any{"seq": float64(seq + 1), "priority": 5.0, "facility": 1.0, "tag": "bin",
			"message": `bad \xff\xfe and ` + "\x01" + ` ctl and é`}),
		with(map[string]any{"seq": float64(seq + 2), "priority": 3.0, "facility": 1.0, "tag": "japp", "message": "json",
			"fields": map[string]any{"trace_id": "abc", "n": "7"}}),
		with(map[string]any{"seq": float64(seq + 3), "priority": 5.0, "facility": 1.0, "tag": "big", "truncated": true}),
	}
	// The RFC 3164 timestamp is read in local time (UTC here), this year or
	// the nearest.
	if st, _ := got[0]["source_time"].(string); !strings.HasSuffix(st, "-11-24T22:31:11.000000000Z") || !(strings.HasPrefix(st, strconv.Itoa(year)) || strings.HasPrefix(st, strconv.Itoa(year-1)) || strings.HasPrefix(st, strconv.Itoa(year+1))) {
		t.Errorf("source_time %q", st)
	}
	delete(got[0], "source_time")
	msg, _ := got[3]["message"].(string)
	if !strings.HasPrefix(msg, "xxxx") || len(msg) >= 150_000 || len(msg) < 100_000 {
		t.Errorf("truncated message has %d bytes", len(msg))
	}
	delete(got[3], "message")
	for i := range want {
		if !jsonEqual(got[i], want[i]) {
			g, _ := json.Marshal(got[i])
			w, _ := json.Marshal(want[i])
			t.Errorf("record %d:\n got %s\nwant %s", i, g, w)
		}
	}
	// Short output escapes the same bytes.
	short := ok(t, "tail", "--addr", d.QueryAddr, "-n", "1", "-t", "bin")
	if !strings.HasSuffix(short, `bin[`+strconv.Itoa(os.Getpid())+`]: bad \xff\xfe and \x01 ctl and é`+"\n") {
		t.Errorf("short: %q", short)
	}
	if raw := ok(t, "tail", "--addr", d.QueryAddr, "-n", "1", "-t", "bin", "-o", "raw"); raw != `bad \xff\xfe and \x01 ctl and é`+"\n" {
		t.Errorf("raw: %q", raw)
	}
}

// TestTailTime: --since and --until, as RFC 3339 times and as durations
// before now, select records by receive time; --since alone shows the
// whole range, not the latest 10.
func TestTailTime(t *testing.T) {
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{})
	var a, b []string
	for i := range 12 {
		a = append(a, fmt.Sprintf("<13>a: a%d", i))
	}
	for i := range 3 {
		b = append(b, fmt.Sprintf("<13>b: b%d", i))
	}
	d.Send(t, a...)
	// The records' receive times are the daemon's clock: the only way to
	// put a known distance between two groups is to let time pass.
	const gap = time.Second
	time.Sleep(gap)
	d.Send(t, b...)
	recs, _ := parseJSON(t, ok(t, "tail", "--addr", d.QueryAddr, "-o", "json", "-n", "100"))
	if len(recs) != 15 {
		t.Fatalf("%d records, want 15", len(recs))
	}
	times := make([]time.Time, len(recs))
	for i, r := range recs {
		times[i], _ = time.Parse(time.RFC3339Nano, r.Time)
	}
	lastA, firstB := times[11], times[12]
	if firstB.Sub(lastA) < gap {
		t.Fatalf("receive times %v and %v are less than %v apart", lastA, firstB, gap)
	}
	msgs := func(out string) string {
		recs, _ := parseJSON(t, out)
		return msgsOf(recs)
	}
	allA := "a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11"
	// The daemon stamps each batch of datagrams it reads with one time, so
	// records may share their time: received lists those at or after
	// since and before until (zero: no bound), as the filter should.
	received := func(since, until time.Time) string {
		var m []string
		for i, r := range recs {
			if !times[i].Before(since) && (until.IsZero() || times[i].Before(until)) {
				m = append(m, r.Message)
			}
		}
		return strings.Join(m, " ")
	}
	last2 := func(s string) string {
		f := strings.Fields(s)
		return strings.Join(f[max(0, len(f)-2):], " ")
	}
	mid := lastA.Add(firstB.Sub(lastA) / 2)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", firstB.Format(time.RFC3339Nano)}, "b0 b1 b2"},
		{[]string{"--since", times[13].Format(time.RFC3339Nano)}, received(times[13], time.Time{})},
		{[]string{"--since", times[13].Add(1).Format(time.RFC3339Nano)}, received(times[13].Add(1), time.Time{})},
		{[]string{"--until", times[13].Format(time.RFC3339Nano), "-n", "2"}, last2(received(time.Time{}, times[13]))},
		{[]string{"--since", times[14].Add(1).Format(time.RFC3339Nano)}, ""},
		{[]string{"--until", firstB.Format(time.RFC3339Nano), "-n", "100"}, allA},
		{[]string{"--until", firstB.Format(time.RFC3339Nano)}, "a2 a3 a4 a5 a6 a7 a8 a9 a10 a11"},
		{[]string{"--since", mid.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)}, "b0 b1 b2"},
		{[]string{"--since", times[0].Format(time.RFC3339Nano), "--until", lastA.Truncate(time.Second).Add(time.Second).Format(time.RFC3339)}, allA},
		{[]string{"--since", "1h"}, allA + " b0 b1 b2"},
		{[]string{"--since", "1d"}, allA + " b0 b1 b2"},
		{[]string{"--since", "-10m", "-n", "2"}, "b1 b2"},
		{[]string{"--until", "1h"}, ""},
		{[]string{"--until", "0.5d", "--since", "1d"}, ""},
	} {
		for _, src := range [][]string{{"--addr", d.QueryAddr}, {"--ring", d.Ring}} {
			args := append(append([]string{"tail", "-o", "json"}, src...), tc.args...)
			if got := msgs(ok(t, args...)); got != tc.want {
				t.Errorf("tail %q:\n got %q\nwant %q", args[1:], got, tc.want)
			}
		}
	}
	// A duration ago that lands between the groups: logctl's now is when
	// it starts, a little after ours.
	for _, src := range [][]string{{"--addr", d.QueryAddr}, {"--ring", d.Ring}} {
		ago := time.Since(mid).Round(time.Millisecond)
		start := time.Now()
		out := ok(t, append([]string{"tail", "-o", "json", "--since", ago.String()}, src...)...)
		if took := time.Since(start); took >= gap/2 {
			t.Fatalf("logctl took %v: too long to test a relative --since against a %v gap", took, gap)
		}
		if got := msgs(out); got != "b0 b1 b2" {
			t.Errorf("--since %v (%s): got %q, want b0 b1 b2", ago, src[0], got)
		}
		// Measured again: on a busy host the first run can take long
		// enough to move "ago" past the gap.
		ago = time.Since(mid).Round(time.Millisecond)
		start = time.Now()
		out = ok(t, append([]string{"tail", "-o", "json", "--until", ago.String(), "-n", "3"}, src...)...)
		if took := time.Since(start); took >= gap/2 {
			t.Fatalf("logctl took %v: too long to test a relative --until against a %v gap", took, gap)
		}
		if got := msgs(out); got != "a9 a10 a11" {
			t.Errorf("--until %v (%s): got %q, want a9 a10 a11", ago, src[0], got)
		}
	}
}

// TestTailCursor: the cursor --show-cursor prints resumes exactly after
// the records printed (or examined), with and without filters.
func TestTailCursor(t *testing.T) {
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{})
	sendNumbered(t, d, 20)
	cursorOf := func(args ...string) (recs []jsonRecord, cursor uint64) {
		t.Helper()
		recs, c := parseJSON(t, ok(t, append([]string{"tail", "--addr", d.QueryAddr, "-o", "json", "--show-cursor"}, args...)...))
		if c < 0 {
			t.Fatalf("tail %q printed no cursor", args)
		}
		return recs, uint64(c)
	}
	recs, c := cursorOf("-n", "3")
	checkNumbered(t, "-n 3", recs, seqRange(18, 21))
	if c != 20 {
		t.Fatalf("cursor %d after records 18..20, want 20", c)
	}
	sendNumbered(t, d, 5)
	for _, src := range [][]string{{"--addr", d.QueryAddr}, {"--ring", d.Ring}} {
		for _, form := range []string{strconv.FormatUint(c, 10), "s=" + strconv.FormatUint(c, 10)} {
			args := append([]string{"tail", "-o", "json", "--after-cursor", form}, src...)
			recs, _ := parseJSON(t, ok(t, args...))
			checkNumbered(t, fmt.Sprint(args), recs, seqRange(21, 26))
		}
	}
	// A resumed query's own cursor chains on; -n bounds it.
	recs, c2 := cursorOf("--after-cursor", strconv.FormatUint(c, 10), "-n", "2")
	checkNumbered(t, "after 20, -n 2", recs, seqRange(21, 23))
	recs, c3 := cursorOf("--after-cursor", strconv.FormatUint(c2, 10))
	checkNumbered(t, fmt.Sprintf("after %d", c2), recs, seqRange(23, 26))
	if c3 != 25 {
		t.Fatalf("cursor %d at the head, want 25", c3)
	}
	recs, c4 := cursorOf("--after-cursor", strconv.FormatUint(c3, 10))
	if len(recs) != 0 || c4 != c3 {
		t.Fatalf("after the head: %d records, cursor %d; want none and %d", len(recs), c4, c3)
	}

	// With a filter the cursor is the last record examined, matching or
	// not: resuming neither repeats nor skips a match.
	d.Send(t, "<13>other: x1", "<11>pick: p1", "<13>other: x2")
	recs, c = cursorOf("-t", "pick")
	if len(recs) != 1 || recs[0].Message != "p1" || c != 28 {
		t.Fatalf("-t pick: %v, cursor %d; want p1, cursor 28", recs, c)
	}
	d.Send(t, "<11>pick: p2", "<13>other: x3", "<11>pick: p3", "<13>other: x4")
	recs, c = cursorOf("-t", "pick", "--after-cursor", strconv.FormatUint(c, 10))
	if got := msgsOf(recs); got != "p2 p3" || c != 32 {
		t.Fatalf("resume -t pick: %v, cursor %d; want p2 p3, cursor 32", recs, c)
	}
	// Nothing matches: the cursor still moves to the head.
	recs, c = cursorOf("-t", "nosuch")
	if len(recs) != 0 || c != 32 {
		t.Fatalf("-t nosuch: %d records, cursor %d; want none, cursor 32", len(recs), c)
	}
	recs, c = cursorOf("-n", "0")
	if len(recs) != 0 || c != 32 {
		t.Fatalf("-n 0: %d records, cursor %d; want none, cursor 32", len(recs), c)
	}
}

// msgsOf joins the records' messages with spaces.
func msgsOf(recs []jsonRecord) string {
	var m []string
	for _, r := range recs {
		m = append(m, r.Message)
	}
	return strings.Join(m, " ")
}

// lossRE is logctl's loss notice on stderr.
var lossRE = regexp.MustCompile(`(?m)^logctl: (\d+) records lost \(overwritten before they were read\); continuing at (\d+)$`)

// lossRanges parses the loss notices in stderr into [from, to] ranges.
func lossRanges(t *testing.T, stderr string) [][2]uint64 {
	t.Helper()
	var out [][2]uint64
	for _, m := range lossRE.FindAllStringSubmatch(stderr, -1) {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		next, _ := strconv.ParseUint(m[2], 10, 64)
		if n == 0 || n >= next {
			t.Fatalf("impossible loss notice %q", m[0])
		}
		out = append(out, [2]uint64{next - n, next - 1})
	}
	return out
}

// TestFollowBulk: a follower reading 200,000 records sent as fast as four
// senders can prints each exactly once, in order, or reports it lost: the
// records printed and the losses reported tile the sequence numbers with
// neither gap nor overlap. With a ring that holds everything nothing may be
// lost; with a small one the follower may fall behind.
func TestFollowBulk(t *testing.T) {
	for _, tc := range []struct {
		ring      string
		mayLose   bool
		senders   int
		perSender int
	}{
		{"64MiB", false, 4, 50_000},
		{"1MiB", true, 4, 50_000},
	} {
		t.Run(tc.ring, func(t *testing.T) {
			d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{RingSize: tc.ring})
			f := startFollower(t, "tail", "-f", "-n", "0", "-o", "json", "--addr", d.QueryAddr)
			start := f.waitLive(t, d)
			total := tc.senders * tc.perSender

			var wg sync.WaitGroup
			errs := make(chan error, tc.senders)
			for s := range tc.senders {
				c := proctest.DialDatagram(t, d.Socket)
				wg.Go(func() {
					var buf []byte
					for n := range tc.perSender {
						buf = fmt.Appendf(buf[:0], "<13>bulk: s%d n%06d", s, n)
						if _, err := c.Write(buf); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			end := start + uint64(total) // the last record's seq
			proctest.WaitHead(t, d.Ring, end+1)

			// Read until the follower has accounted for end, by printing
			// it or by reporting it lost.
			var printed []uint64
			lastPerSender := make([]int, tc.senders)
			for i := range lastPerSender {
				lastPerSender[i] = -1
			}
			// accounted is the last seq printed or reported lost.
			lostUpTo, stderrLen := start, -1
			accounted := func() uint64 {
				if len(printed) > 0 {
					return max(printed[len(printed)-1], lostUpTo)
				}
				return lostUpTo
			}
			deadline := time.After(e2eTimeout)
			read := func() (line string, ok bool) {
				select {
				case l, ok := <-f.lines:
					if !ok {
						t.Fatalf("follower exited; stderr:\n%s", f.stderr)
					}
					return l, true
				default:
				}
				// Nothing to read: look for loss notices, then wait
				// for either stream.
				text, stderrChanged := f.stderr.Snapshot()
				if len(text) != stderrLen {
					stderrLen = len(text)
					for _, r := range lossRanges(t, text) {
						lostUpTo = max(lostUpTo, r[1])
					}
					return "", false
				}
				select {
				case l, ok := <-f.lines:
					if !ok {
						t.Fatalf("follower exited; stderr:\n%s", f.stderr)
					}
					return l, true
				case <-stderrChanged:
					return "", false
				case <-deadline:
					t.Fatalf("follower accounted for %d of %d..%d after %v; stderr:\n%s", accounted(), start+1, end, e2eTimeout, f.stderr)
				}
				return "", false
			}
			for accounted() < end {
				line, ok := read()
				if !ok {
					continue
				}
				seq, s, n := parseBulk(t, line)
				if seq <= start || seq > end {
					t.Fatalf("printed seq %d outside %d..%d: %q", seq, start+1, end, line)
				}
				if len(printed) > 0 && seq <= printed[len(printed)-1] {
					t.Fatalf("seq %d printed after %d", seq, printed[len(printed)-1])
				}
				if s >= tc.senders || n <= lastPerSender[s] {
					t.Fatalf("%q after sender %d's n%06d: out of order or repeated", line, s, lastPerSender[s])
				}
				lastPerSender[s] = n
				printed = append(printed, seq)
			}
			rest := f.stop(t)
			if len(rest) > 0 {
				t.Fatalf("follower printed %d more lines, starting %q", len(rest), rest[0])
			}

			// Printed and lost records tile start+1..end exactly.
			losses := lossRanges(t, f.stderr.String())
			var lost uint64
			next, li := start+1, 0
			for _, seq := range printed {
				for li < len(losses) && losses[li][0] == next {
					lost += losses[li][1] - losses[li][0] + 1
					next = losses[li][1] + 1
					li++
				}
				if seq != next {
					t.Fatalf("seq %d printed where %d was expected (losses %v)", seq, next, losses)
				}
				next++
			}
			for ; li < len(losses) && losses[li][0] == next; li++ {
				lost += losses[li][1] - losses[li][0] + 1
				next = losses[li][1] + 1
			}
			if li != len(losses) || next != end+1 {
				t.Fatalf("losses %v do not fit the printed records (next %d, end %d)", losses[li:], next, end)
			}
			if uint64(len(printed))+lost != uint64(total) {
				t.Fatalf("printed %d + lost %d != sent %d", len(printed), lost, total)
			}
			if !tc.mayLose && lost != 0 {
				t.Fatalf("%d records lost although the ring holds them all", lost)
			}
			if other := lossRE.ReplaceAllString(f.stderr.String(), ""); strings.TrimSpace(other) != "" {
				t.Errorf("unexpected stderr: %q", other)
			}
			t.Logf("printed %d, lost %d in %d notices", len(printed), lost, len(losses))
		})
	}
}

// quickJSON extracts seq, tag and message from a JSON line of logctl's
// whose tag and message need no escaping, without a full decode:
// encoding/json under the race detector would dominate tests that read
// hundreds of thousands of lines.
func quickJSON(t *testing.T, line string) (seq uint64, tag, msg string) {
	t.Helper()
	rest, ok := strings.CutPrefix(line, `{"seq":`)
	num, rest, ok2 := strings.Cut(rest, ",")
	_, rest, ok3 := strings.Cut(rest, `,"tag":"`)
	tag, rest, ok4 := strings.Cut(rest, `","message":"`)
	// The message, then the end or the trusted origin fields.
	msg, after, _ := strings.Cut(rest, `"`)
	ok5 := after == "}" || strings.HasPrefix(after, `,"comm":`) && strings.HasSuffix(after, "}")
	seq, err := strconv.ParseUint(num, 10, 64)
	if !ok || !ok2 || !ok3 || !ok4 || !ok5 || err != nil || strings.ContainsAny(msg, `"\`) {
		t.Fatalf("unexpected line %q", line)
	}
	return seq, tag, msg
}

// ownOrigin returns the origin fields the daemon finds for this test
// process, as -o json shows them, from /proc/self.
func ownOrigin(t *testing.T) map[string]any {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"comm": strings.TrimSuffix(string(comm), "\n"), "exe": exe}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := origin.CgroupPath(cg); ok {
		m["cgroup"] = string(p)
		u, uu, sl := origin.Units(p)
		for k, v := range map[string][]byte{"unit": u, "user_unit": uu, "slice": sl} {
			if len(v) > 0 {
				m[k] = string(v)
			}
		}
	}
	return m
}

// parseBulk extracts seq and the sender and number of a bulk record.
func parseBulk(t *testing.T, line string) (seq uint64, sender, n int) {
	t.Helper()
	seq, tag, msg := quickJSON(t, line)
	s, nn, ok := strings.Cut(strings.TrimPrefix(msg, "s"), " n")
	var err1, err2 error
	sender, err1 = strconv.Atoi(s)
	n, err2 = strconv.Atoi(nn)
	if tag != "bulk" || !ok || err1 != nil || err2 != nil {
		t.Fatalf("unexpected record %q", line)
	}
	return seq, sender, n
}

// TestFollowAcrossRestart: a follower survives the daemon stopping and a
// new one starting on the same ring, socket and address: it prints what
// was sent before and after, each exactly once, with no gap.
func TestFollowAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := proctest.DaemonOptions{QueryAddr: proctest.FreePort(t)}
	d := startDaemon(t, dir, cfg)
	f := startFollower(t, "tail", "-f", "-n", "0", "-o", "json", "--addr", d.QueryAddr)
	start := f.waitLive(t, d)
	d.Send(t, "<13>restart: A1", "<13>restart: A2")
	for _, want := range []string{"A1", "A2"} {
		if r := f.nextJSON(t); r.Message != want {
			t.Fatalf("follower printed %q, want %s", r.Message, want)
		}
	}
	d.Stop(t)
	d = startDaemon(t, dir, cfg)
	// The follower reconnects with a backoff; whatever arrives meanwhile
	// is printed when it does.
	d.Send(t, "<13>restart: B1", "<13>restart: B2")
	for i, want := range []string{"B1", "B2"} {
		r := f.nextJSON(t)
		if r.Message != want || r.Seq != start+3+uint64(i) {
			t.Fatalf("follower printed %d %q, want %d %s", r.Seq, r.Message, start+3+uint64(i), want)
		}
	}
	// And once more: the follower resumes after B2.
	d.Stop(t)
	d = startDaemon(t, dir, cfg)
	d.Send(t, "<13>restart: C1")
	if r := f.nextJSON(t); r.Message != "C1" || r.Seq != start+5 {
		t.Fatalf("follower printed %d %q, want %d C1", r.Seq, r.Message, start+5)
	}
	if rest := f.stop(t); len(rest) > 0 {
		t.Fatalf("follower printed more: %q", rest)
	}
	if lossRE.MatchString(f.stderr.String()) {
		t.Fatalf("loss reported:\n%s", f.stderr)
	}
	for _, l := range strings.Split(strings.TrimSpace(f.stderr.String()), "\n") {
		if l != "" && !strings.Contains(l, "reconnect") {
			t.Errorf("unexpected stderr line %q", l)
		}
	}
}

// TestStalledClient: a client that sends a follow query and never reads
// does not stop ingest or other clients, and catches up without loss once
// it reads (the ring holding everything). The cost in ingest rate is
// measured by bench/query, not asserted here.
func TestStalledClient(t *testing.T) {
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{RingSize: "64MiB"})
	_, head := proctest.RingState(t, d.Ring)
	after := head - 1

	// The stalled client: a tiny receive buffer, a follow of everything
	// after the current head, then nothing read.
	dialer := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096) })
		return serr
	}}
	nc, err := dialer.Dial("tcp", d.QueryAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fr := query.NewFrameReader(bufio.NewReaderSize(nc, 64<<10), query.MaxServerFrame)
	nc.Write(query.AppendFrame(nil, query.FrameHello, []byte(`{"protocol":1,"client":"stalled"}`)))
	if ft, body, err := fr.Next(); err != nil || ft != query.FrameWelcome {
		t.Fatalf("hello: %v %s %v", ft, body, err)
	}
	nc.Write(query.AppendFrame(nil, query.FrameQuery, fmt.Appendf(nil, `{"id":7,"follow":true,"after":%d}`, after)))

	const n, size = 20_000, 1000
	pad := strings.Repeat("p", size)
	c := proctest.DialDatagram(t, d.Socket)
	began := time.Now()
	for i := range n {
		if _, err := fmt.Fprintf(c, "<13>load: n=%06d %s", i, pad); err != nil {
			t.Fatal(err)
		}
	}
	oldest, head := proctest.WaitHead(t, d.Ring, after+1+n)
	t.Logf("ingested %d datagrams of %d bytes in %v with a stalled client", n, size, time.Since(began))
	if oldest > after+1 {
		t.Fatalf("ring lost records: holds %d..%d", oldest, head-1)
	}
	recs, _ := parseJSON(t, ok(t, "tail", "-n", "5", "-o", "json", "--addr", d.QueryAddr))
	if got := seqs(recs); !slices.Equal(got, seqRange(head-5, head)) {
		t.Fatalf("tail -n 5 while a client stalls: seqs %v, want %v", got, seqRange(head-5, head))
	}
	for i, r := range recs {
		if want := fmt.Sprintf("n=%06d %s", n-5+i, pad); r.Message != want {
			t.Fatalf("record %d: %.20q, want %.20q", r.Seq, r.Message, want)
		}
	}

	// The server wrote until the client's window was full: the client
	// holds a small part of the response.
	inq := unreadBytes(t, nc)
	if inq == 0 {
		t.Fatal("the stalled client received nothing: the server never wrote to it")
	}

	// Once it reads, it gets every record in order, then the end of the
	// query when it cancels.
	var got, lost uint64
	var total int
	last := after
	for last < head-1 {
		nc.SetReadDeadline(time.Now().Add(e2eTimeout))
		ft, body, err := fr.Next()
		if err != nil {
			t.Fatalf("reading the stalled client's stream after %d records: %v", got, err)
		}
		total += 5 + len(body)
		switch ft {
		case query.FrameBatch:
			b, err := query.ParseBatch(body)
			if err != nil {
				t.Fatal(err)
			}
			for r, ok := b.Next(); ok; r, ok = b.Next() {
				if r.Seq != last+1 {
					t.Fatalf("record %d after %d", r.Seq, last)
				}
				last = r.Seq
				got++
			}
		case query.FrameLost:
			l, next, err := query.ParseLost(body)
			if err != nil {
				t.Fatal(err)
			}
			lost += l
			last = next - 1
		case query.FramePing:
		default:
			t.Fatalf("unexpected %s frame: %s", ft, body)
		}
	}
	if got != n || lost != 0 {
		t.Fatalf("stalled client got %d records and %d lost, want %d and none", got, lost, n)
	}
	if inq >= total/2 {
		t.Fatalf("the client had %d of %d bytes queued: it was never behind", inq, total)
	}
	t.Logf("the stalled client had %d bytes queued of the %d the server sent", inq, total)
	nc.Write(query.AppendFrame(nil, query.FrameCancel, nil))
	for {
		ft, body, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ft == query.FrameEnd {
			e, err := query.DecodeEnd(body)
			if err != nil || e.ID != 7 || e.Reason != query.ReasonCancelled || e.Cursor != head-1 {
				t.Fatalf("end %+v, %v; want id 7, cancelled at %d", e, err, head-1)
			}
			break
		}
		if ft != query.FramePing {
			t.Fatalf("unexpected %s frame after cancel", ft)
		}
	}
}

// unreadBytes returns how many bytes wait in nc's receive queue.
func unreadBytes(t *testing.T, nc net.Conn) int {
	t.Helper()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var ierr error
	rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	if ierr != nil {
		t.Fatal(ierr)
	}
	return n
}

// TestRingEqualsServer: `tail --ring` prints byte for byte what the same
// query prints over TCP.
func TestRingEqualsServer(t *testing.T) {
	d := startDaemon(t, openDir(t), proctest.DaemonOptions{})
	all := dataset(t, d)
	sendNumbered(t, d, 40)
	mid := strconv.FormatUint(all[len(all)/2].seq, 10)
	queries := [][]string{
		{},
		{"-n", "0"},
		{"-n", "1000"},
		{"-n", "7", "--show-cursor"},
		{"-p", "err"},
		{"-p", "4", "-n", "3"},
		{"-t", "many", "-g", "[02468]$"},
		{"--field", "zoo@123.tiger=hungry"},
		{"--uid", strconv.Itoa(os.Getuid()), "--pid", strconv.Itoa(os.Getpid()), "-n", "50"},
		{"--since", "1h"},
		{"--until", "1h"},
		{"--after-cursor", mid, "--show-cursor"},
		{"--after-cursor", mid, "-n", "4", "-t", "many", "--show-cursor"},
		{"-t", "nosuch", "--show-cursor"},
	}
	for i, q := range queries {
		formats := []string{"json", "short"}
		if i < 3 {
			formats = append(formats, "short-iso", "raw")
		}
		for _, format := range formats {
			args := append([]string{"tail", "-o", format}, q...)
			tcp := logctl(t, append(args, "--addr", d.QueryAddr)...)
			ring := logctl(t, append(args, "--ring", d.Ring)...)
			if tcp != ring {
				t.Errorf("tail %q:\n--addr: exit %d, stderr %q\n%s\n--ring: exit %d, stderr %q\n%s", args[1:], tcp.code, tcp.stderr, tcp.stdout, ring.code, ring.stderr, ring.stdout)
			}
			if tcp.code != 0 {
				t.Errorf("tail %q: exit %d: %s", args[1:], tcp.code, tcp.stderr)
			}
		}
	}
}

// TestTailExitCodes: 0 for success, 1 with a one-line message for a
// failure, 2 for a bad command line.
func TestTailExitCodes(t *testing.T) {
	dir := openDir(t)
	d := startDaemon(t, dir, proctest.DaemonOptions{})
	d.Send(t, "<13>x: one")
	notARing := dir + "/not-a-ring"
	if err := os.WriteFile(notARing, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := proctest.FreePort(t)

	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"tail", "--addr", refused}, 1, "connection refused"},
		{[]string{"tail", "--ring", dir + "/nosuch"}, 1, "no such file"},
		{[]string{"tail", "--ring", notARing}, 1, "not a collectord ring"},
		{[]string{"tail", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"tail", "-o", "yaml"}, 2, `output "yaml"`},
		{[]string{"tail", "-n", "-1"}, 2, "must not be negative"},
		{[]string{"tail", "-n", "ten"}, 2, `invalid argument "ten"`},
		{[]string{"tail", "-p", "loud"}, 2, `unknown level "loud"`},
		{[]string{"tail", "--since", "yesterday"}, 2, "--since"},
		{[]string{"tail", "--until", "2026-13-01"}, 2, "--until"},
		{[]string{"tail", "-g", "("}, 2, "filter.grep"},
		{[]string{"tail", "--field", "novalue"}, 2, "KEY=VALUE"},
		{[]string{"tail", "--pid", "x"}, 2, "--pid"},
		{[]string{"tail", "--uid", "-1"}, 2, "--uid"},
		{[]string{"tail", "--after-cursor", "abc"}, 2, "not a cursor"},
		{[]string{"tail", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"tail", "--ring", d.Ring, "--addr", d.QueryAddr}, 2, "one or the other"},
		{[]string{"tail", "--since", "1h", "--until", "2h"}, 2, "until"},
	} {
		r := logctl(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("logctl %q: exit %d, stdout %q, stderr %q; want exit %d mentioning %q", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.want)
		}
		if tc.code == 1 && strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("logctl %q: want a one-line message, got %q", tc.args, r.stderr)
		}
	}

	// A ring the user may not read: as root, run logctl as nobody; as
	// anyone else, take our own read permission away.
	var cred *syscall.Credential
	if cred = asNobody(); cred == nil {
		if err := os.Chmod(d.Ring, 0); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(d.Ring, 0o640)
	} else if st, err := os.Stat(d.Ring); err != nil || st.Mode().Perm()&0o004 != 0 {
		t.Fatalf("ring mode %v, %v: want it unreadable by others", st.Mode(), err)
	}
	r := logctlAs(t, cred, "tail", "--ring", d.Ring)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "permission denied") ||
		!strings.Contains(r.stderr, "read permission") || r.stdout != "" {
		t.Errorf("unreadable ring: exit %d, stdout %q, stderr %q; want exit 1 and one line about read permission", r.code, r.stdout, r.stderr)
	}
	// The same user can still ask the daemon.
	if r := logctlAs(t, cred, "tail", "--addr", d.QueryAddr, "-o", "raw"); r.code != 0 || r.stdout != "one\n" {
		t.Errorf("tail over TCP as another user: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
}

// TestTailResumesAfterRestart: a `tail -n N` cut short by the daemon
// stopping reconnects and prints the rest exactly once when the daemon
// comes back; when it does not come back, it fails (exit 1) naming the
// cursor that resumes the output exactly.
func TestTailResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := proctest.DaemonOptions{QueryAddr: proctest.FreePort(t), RingSize: "64MiB", Args: []string{"--log-level", "debug"}}
	d := startDaemon(t, dir, cfg)
	const n = 50_000
	sendNumbered(t, d, n)
	check := func(what string, lines []string) {
		t.Helper()
		if len(lines) != n {
			t.Fatalf("%s: %d lines, want %d", what, len(lines), n)
		}
		for i, l := range lines {
			if seq, tag, msg := quickJSON(t, l); seq != uint64(i+1) || tag != "seqtest" || msg != seqMsg(seq) {
				t.Fatalf("%s: line %d is %q, want record %d", what, i, l, i+1)
			}
		}
	}

	f := startFollower(t, "tail", "-n", strconv.Itoa(n), "-o", "json", "--addr", d.QueryAddr)
	first := f.next(t, e2eTimeout)
	d.Stop(t)
	d = startDaemon(t, dir, cfg)
	rest, code := f.wait(t)
	if code != 0 {
		t.Fatalf("exit %d after the restart; stderr:\n%s", code, f.stderr)
	}
	check("across a restart", append([]string{first}, rest...))
	if !strings.Contains(d.Logs.String(), `"connection opened"`) {
		t.Fatalf("the response was complete before the daemon stopped: nothing tested")
	}
	if s := f.stderr.String(); strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(s, "reconnecting", ""), "reconnected", "")) != "" && !strings.Contains(s, "reconnect") {
		t.Errorf("unexpected stderr %q", s)
	}

	// This time the daemon stays away.
	f = startFollower(t, "tail", "-n", strconv.Itoa(n), "-o", "json", "--addr", d.QueryAddr)
	printed := []string{f.next(t, e2eTimeout)}
	d.Stop(t)
	rest, code = f.wait(t)
	printed = append(printed, rest...)
	m := regexp.MustCompile(`\nlogctl tail: .* \(resume with --after-cursor (\d+)\)\n$`).FindStringSubmatch(f.stderr.String())
	if code != 1 || m == nil {
		t.Fatalf("daemon gone for good: exit %d, stderr %q; want exit 1 and a cursor to resume from", code, f.stderr)
	}
	d = startDaemon(t, dir, cfg)
	more := ok(t, "tail", "--addr", d.QueryAddr, "-o", "json", "--after-cursor", m[1], "-n", strconv.Itoa(n-len(printed)))
	check("resumed by hand", append(printed, strings.Split(strings.TrimSuffix(more, "\n"), "\n")...))
}

// TestFollowRingRecreated: when the daemon comes back with a new ring
// (sequence numbers restarted), a follower says so and prints every record
// of the new ring, not only the latest few.
func TestFollowRingRecreated(t *testing.T) {
	dir := t.TempDir()
	cfg := proctest.DaemonOptions{QueryAddr: proctest.FreePort(t)}
	d := startDaemon(t, dir, cfg)
	f := startFollower(t, "tail", "-f", "-n", "0", "-o", "json", "--addr", d.QueryAddr)
	f.waitLive(t, d)
	d.Stop(t)
	if err := os.Remove(d.Ring); err != nil {
		t.Fatal(err)
	}
	// The new ring fills while the follower cannot reach it.
	d = proctest.StartDaemon(t, dir, proctest.DaemonOptions{}) // no query server
	sendNumbered(t, d, 15)
	d.Stop(t)
	startDaemon(t, dir, cfg) // serves the follower; the test cleanup stops it
	var recs []jsonRecord
	for range 15 {
		recs = append(recs, f.nextJSON(t))
	}
	checkNumbered(t, "new ring", recs, seqRange(1, 16))
	f.stop(t)
	if !strings.Contains(f.stderr.String(), "ring was recreated") {
		t.Errorf("no notice of the new ring; stderr:\n%s", f.stderr)
	}
}

// TestTailOutputError: when the output cannot be written, logctl fails
// with exit status 1 at once, with or without --follow: reconnecting
// cannot help.
func TestTailOutputError(t *testing.T) {
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{})
	d.Send(t, "<13>x: one")
	logctlBin := proctest.Logctl(t)
	for _, args := range [][]string{{"tail"}, {"tail", "-f"}, {"tail", "--ring", d.Ring}, {"tail", "-f", "--ring", d.Ring}} {
		if !slices.Contains(args, "--ring") {
			args = append(args, "--addr", d.QueryAddr)
		}
		full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
		if err != nil {
			t.Skip(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, logctlBin, args...)
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = full, &stderr
		err = cmd.Run()
		cancel()
		full.Close()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(stderr.String(), "no space left on device") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("logctl %q > /dev/full: %v, stderr %q; want exit 1 with one line about the write", args, err, stderr.String())
		}
	}
}
