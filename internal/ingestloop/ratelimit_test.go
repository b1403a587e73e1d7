//go:build linux

package ingestloop

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/record"
)

const ms = int64(time.Millisecond)

func TestLimiter(t *testing.T) {
	// Times are in milliseconds.
	l := newLimiter(RateLimit{Burst: 3, Interval: 10 * time.Millisecond, MaxSenders: 2})
	a, b, c, d := senderKey{1, 1}, senderKey{1, 2}, senderKey{2, 3}, senderKey{2, 4}
	allow := func(k senderKey, now int64, want bool) {
		t.Helper()
		if got := l.allow(k, now*ms); got != want {
			t.Errorf("allow(%v, %d) = %v, want %v", k, now, got, want)
		}
	}
	type note struct {
		k senderKey
		n uint64
	}
	notes := func(now int64, all bool) (got []note) {
		l.notes(now*ms, all, func(k senderKey, n uint64) { got = append(got, note{k, n}) })
		return got
	}
	for now := range int64(3) {
		allow(a, now, true)
	}
	allow(a, 4, false)
	allow(a, 5, false)
	allow(b, 5, true) // another sender is not affected
	if due, ok := l.due(); !ok || due != 10*ms {
		t.Errorf("due = %d, %v; want 10 (a's window ends)", due, ok)
	}
	if got := notes(9, false); got != nil {
		t.Errorf("notes before the window ends: %v", got)
	}
	if got := notes(10, false); len(got) != 1 || got[0] != (note{a, 2}) {
		t.Errorf("notes at the window's end = %v, want a's 2 drops", got)
	}
	if _, ok := l.due(); ok {
		t.Error("a note is still due after it was written")
	}
	allow(a, 11, true) // a new window

	// The table is full (a, b): a new sender shares the overflow bucket
	// until a sender's window has ended and it can be forgotten.
	for i := range 3 {
		allow(c, 12+int64(i), true)
	}
	allow(d, 15, false) // c used the overflow bucket's burst
	if got := notes(100, true); len(got) != 1 || got[0] != (note{overflowKey, 1}) {
		t.Errorf("all notes = %v, want the overflow bucket's 1 drop", got)
	}
	allow(d, 100, true) // a and b are forgotten: d gets its own entry
	if _, ok := l.senders[d]; !ok {
		t.Error("d not tracked after the expired senders were evicted")
	}

	if newLimiter(RateLimit{}) != nil {
		t.Error("the zero RateLimit makes a limiter; want limiting off")
	}
}

// One process floods while another logs normally: the other's messages
// all arrive, the flooder stores its burst per window, and once it stops
// exactly one note per window reports the rest, with nothing else sent.
func TestRateLimitFlood(t *testing.T) {
	const (
		burst    = 1000
		interval = 500 * time.Millisecond
		flood    = 20_000
		calm     = 200
	)
	h := startHarness(t, harnessOptions{Ingest: Options{RateLimit: RateLimit{Burst: burst, Interval: interval}}})
	child := proctest.ChildCommand(t.Context(), "flood", h.path, strconv.Itoa(flood))
	var stderr bytes.Buffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	sock := dialRaw(t, h.path)
	for i := range calm {
		send(t, sock, []byte("calm "+strconv.Itoa(i)))
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("flooder: %v\n%s", err, stderr.Bytes())
	}
	flooder := uint32(child.Process.Pid)

	var calmSeen, floodStored int
	var notes []uint64
	var suppressed uint64
	for calmSeen < calm || uint64(floodStored)+suppressed < flood {
		e := h.next1(t)
		switch {
		case e.PID == flooder:
			floodStored++
		case string(e.Tag) == "collectord":
			n := checkNote(t, e, flooder)
			notes = append(notes, n)
			suppressed += n
		case bytes.HasPrefix(e.Message, []byte("calm ")):
			if want := fmt.Sprintf("calm %d", calmSeen); string(e.Message) != want {
				t.Errorf("calm message %q, want %q", e.Message, want)
			}
			calmSeen++
		default:
			t.Errorf("unexpected record %+v", e)
		}
	}
	// Each window with drops stored the burst; a last window may have
	// stored less and dropped nothing.
	if floodStored < burst*len(notes) || floodStored > burst*(len(notes)+1) {
		t.Errorf("flooder stored %d with %d windows with drops, want between %d and %d", floodStored, len(notes), burst*len(notes), burst*(len(notes)+1))
	}
	if got := h.in.Stats().Reasons[ReasonRateLimited]; got != suppressed {
		t.Errorf("rate_limited counter = %d, want the %d the notes report", got, suppressed)
	}
	t.Logf("flooder: %d stored, %d suppressed, reported in %d notes %v", floodStored, suppressed, len(notes), notes)
}

// checkNote checks a suppression note about pid and returns its count.
func checkNote(t *testing.T, e record.Entry, pid uint32) uint64 {
	t.Helper()
	fields := map[string]string{}
	for _, f := range e.Fields {
		fields[string(f.Key)] = string(f.Value)
	}
	n, err := strconv.ParseUint(fields["SUPPRESSED"], 10, 64)
	want := fmt.Sprintf("Suppressed %d messages from pid %d (uid %d)", n, pid, os.Getuid())
	if err != nil || n == 0 || string(e.Message) != want || fields["SUPPRESSED_PID"] != strconv.Itoa(int(pid)) ||
		fields["SUPPRESSED_UID"] != strconv.Itoa(os.Getuid()) || e.Priority != 5<<3|4 || e.PID != uint32(os.Getpid()) || e.Flags&record.FlagCreds == 0 {
		t.Errorf("note %+v (message %q, fields %v): want %q from this process at syslog.warning", e, e.Message, fields, want)
	}
	return n
}

// Without a rate limit nothing is dropped however fast one sender goes.
func TestRateLimitOffByDefault(t *testing.T) {
	h := startHarness(t, harnessOptions{})
	sock := dialRaw(t, h.path)
	const n = 5000
	for i := range n {
		send(t, sock, []byte("m"+strconv.Itoa(i)))
	}
	h.nextRecords(t, n)
	if got := h.in.Stats().Reasons[ReasonRateLimited]; got != 0 {
		t.Errorf("rate_limited = %d without a limit", got)
	}
}

// Drops not yet reported when Run stops are reported then, so that a
// restart or an upgrade loses no count.
func TestRateLimitNotesOnStop(t *testing.T) {
	h := startHarness(t, harnessOptions{Ingest: Options{RateLimit: RateLimit{Burst: 2, Interval: time.Hour}}})
	sock := dialRaw(t, h.path)
	for range 5 {
		send(t, sock, []byte("x"))
	}
	h.nextRecords(t, 2)
	waitFor(t, func() bool { return h.in.Stats().Reasons[ReasonRateLimited] == 3 })
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if n := checkNote(t, h.next1(t), uint32(os.Getpid())); n != 3 {
		t.Errorf("note on stop reports %d, want 3", n)
	}
}

// The limiter adds no allocation per datagram.
func TestRateLimitAllocs(t *testing.T) {
	h := newHarness(t, harnessOptions{Ingest: Options{RateLimit: RateLimit{Burst: 10, Interval: time.Hour}}})
	sock := dialRaw(t, h.path)
	data := []byte("<13>Jan  2 03:04:05 host app[7]: hello")
	if n := testing.AllocsPerRun(100, func() { h.storeOne(t, sock, data) }); n != 0 {
		t.Errorf("%v allocations per datagram with a rate limit, want 0", n)
	}
	if got := h.in.Stats().Reasons[ReasonRateLimited]; got != 91 {
		t.Errorf("rate_limited = %d, want 91 of 101", got)
	}
}

// waitFor polls cond, failing after waitTimeout; for counters, which have
// no event to wait on.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		<-tick.C
	}
}
