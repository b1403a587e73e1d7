//go:build linux

package ingestloop

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/collectord/collectord/pkg/ingest/ingesttest"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/dgram"
	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/ingest"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/record/recordtest"
	"github.com/collectord/collectord/pkg/shmring"
)

// The test binary's children are clients in another process (with another
// PID), without building anything: "gosyslog SOCKET-PATH" and "flood
// SOCKET-PATH COUNT" (see ingest_clients_test.go).
func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func([]string) error{
		"gosyslog": func(args []string) error { return goSyslogClient(args[0]) },
		"flood":    func(args []string) error { return floodClient(args[0], args[1]) },
	})
}

// waitTimeout bounds every wait in these tests: for records, for Run to
// return, for a child process. It is a failure deadline, never a delay.
const waitTimeout = 10 * time.Second

// harness is a real Ingester reading a real socket (dgram.Listen) and
// writing a real ring, both in t.TempDir(), with a reader and a cursor on
// the ring as a query client would have.
type harness struct {
	t    *testing.T
	path string // the socket clients send to
	conn *net.UnixConn
	w    *shmring.Writer
	r    *shmring.Reader
	cur  *shmring.Cursor
	in   *Ingester

	cancel context.CancelFunc // stops the running Run; nil when none runs
	done   chan error         // receives Run's result
}

type harnessOptions struct {
	Ingest   Options
	RingSize uint64 // data area; default 8 MiB (records up to 1 MiB)
}

// newHarness creates the socket, the ring and an Ingester, without starting
// it: tests that need datagrams queued before Run call start themselves.
// Everything is closed when the test ends.
func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "log.sock")
	conn, err := dgram.Listen(path, dgram.ListenOptions{})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if o.RingSize == 0 {
		o.RingSize = 8 << 20
	}
	ringPath := filepath.Join(dir, "ring")
	w, err := shmring.OpenWriter(ringPath, shmring.Options{Size: o.RingSize})
	if err != nil {
		t.Fatalf("open ring writer: %v", err)
	}
	t.Cleanup(func() { w.Close() })
	r, err := shmring.OpenReader(ringPath)
	if err != nil {
		t.Fatalf("open ring reader: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	h := &harness{t: t, path: path, conn: conn, w: w, r: r, cur: r.Cursor(shmring.FirstSeq)}
	h.in = h.newIngester(o.Ingest)
	// Registered last, so it runs first: Run stops before anything closes.
	t.Cleanup(func() {
		if h.cancel != nil {
			if err := h.stop(); err != nil {
				t.Errorf("Run returned %v at the end of the test, want nil", err)
			}
		}
	})
	return h
}

// startHarness is newHarness followed by start.
func startHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	h := newHarness(t, o)
	h.start()
	return h
}

// newIngester creates another Ingester on the harness's socket and ring,
// as a restarted daemon would.
func (h *harness) newIngester(opts Options) *Ingester {
	h.t.Helper()
	in, err := New(h.conn, h.w, opts)
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	return in
}

// start runs h.in in a goroutine until stop (or the end of the test).
func (h *harness) start() {
	h.t.Helper()
	if h.cancel != nil {
		h.t.Fatal("start: Run is already running")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	in := h.in
	go func() { done <- in.Run(ctx) }()
	h.cancel, h.done = cancel, done
}

// stop cancels Run's context and returns what Run returned, failing the
// test if Run does not return within waitTimeout.
func (h *harness) stop() error {
	h.t.Helper()
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		return err
	case <-time.After(waitTimeout):
		h.t.Fatalf("Run did not return within %v of its context being cancelled", waitTimeout)
		return nil
	}
}

// nextRecords waits for the next k records on the ring and returns them
// (payloads copied), failing t if they do not all arrive within
// waitTimeout or if any record was skipped.
func (h *harness) nextRecords(t testing.TB, k int) []shmring.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	recs := make([]shmring.Record, 0, k)
	for len(recs) < k {
		rec, lost, err := h.cur.Next()
		if lost != 0 {
			t.Errorf("ring reader lost %d records before seq %d", lost, h.cur.Pos())
		}
		if errors.Is(err, shmring.ErrNoRecord) {
			if err := h.r.Wait(ctx, h.cur.Pos()); err != nil {
				t.Fatalf("waiting for record %d of %d (seq %d): %v; ingest stats %+v",
					len(recs)+1, k, h.cur.Pos(), err, h.in.Stats())
			}
			continue
		}
		if err != nil {
			t.Fatalf("read ring: %v", err)
		}
		rec.Payload = bytes.Clone(rec.Payload)
		recs = append(recs, rec)
	}
	return recs
}

// next waits for the next k records and returns them decoded.
func (h *harness) next(t testing.TB, k int) []record.Entry {
	t.Helper()
	recs := h.nextRecords(t, k)
	es := make([]record.Entry, len(recs))
	for i, rec := range recs {
		es[i] = decodeEntry(t, rec.Payload)
	}
	return es
}

// next1 waits for the next record and returns it decoded.
func (h *harness) next1(t testing.TB) record.Entry {
	t.Helper()
	return h.next(t, 1)[0]
}

func decodeEntry(t testing.TB, payload []byte) record.Entry {
	t.Helper()
	var e record.Entry
	if err := record.Decode(payload, &e); err != nil {
		t.Fatalf("decode ring record: %v", err)
	}
	return e
}

// dialRaw connects a blocking datagram socket to path and returns its
// descriptor, closed when the test ends. Raw descriptors let tests pass
// descriptors (SCM_RIGHTS), send empty datagrams, and send without
// allocating.
func dialRaw(t testing.TB, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatalf("connect %s: %v", path, err)
	}
	return fd
}

// send sends one datagram on a socket from dialRaw, passing fds with
// SCM_RIGHTS if any. sendmsg(2) is used even without descriptors because
// write(2) of zero bytes sends nothing on a socket.
func send(t testing.TB, sock int, data []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(sock, data, oob, nil, 0); err != nil {
		t.Fatalf("send %d bytes and %d descriptors: %v", len(data), len(fds), err)
	}
}

// ourCreds returns an entry's trusted identity when this process sent it.
func ourCreds(e record.Entry) record.Entry {
	e.Flags |= record.FlagCreds
	e.PID, e.UID, e.GID = uint32(os.Getpid()), uint32(os.Getuid()), uint32(os.Getgid())
	return e
}

// wantStats builds the Stats an Ingester should report: datagrams stored
// per format, reasons as given, every other reason zero. Bytes and Batches
// are copied from got, for tests that check them separately (or cannot).
func wantStats(got Stats, stored map[record.Format]uint64, reasons map[string]uint64) Stats {
	w := Stats{Reasons: make(map[string]uint64), Bytes: got.Bytes, Batches: got.Batches}
	for f, n := range stored {
		w.Datagrams[f] = n
	}
	for _, r := range Reasons {
		w.Reasons[r] = reasons[r]
	}
	return w
}

func checkStats(t *testing.T, got, want Stats) {
	t.Helper()
	if got.Datagrams != want.Datagrams {
		t.Errorf("Stats().Datagrams = %v, want %v (by format %v)", got.Datagrams, want.Datagrams, formatNames())
	}
	if got.Bytes != want.Bytes {
		t.Errorf("Stats().Bytes = %v, want %v", got.Bytes, want.Bytes)
	}
	if got.Batches != want.Batches {
		t.Errorf("Stats().Batches = %d, want %d", got.Batches, want.Batches)
	}
	for _, r := range Reasons {
		if got.Reasons[r] != want.Reasons[r] {
			t.Errorf("Stats().Reasons[%q] = %d, want %d", r, got.Reasons[r], want.Reasons[r])
		}
	}
	if len(got.Reasons) != len(Reasons) {
		t.Errorf("Stats().Reasons has %d keys, want the %d of Reasons: %v", len(got.Reasons), len(Reasons), got.Reasons)
	}
}

func formatNames() []string {
	var s []string
	for f := range NumFormats {
		s = append(s, record.Format(f).String())
	}
	return s
}

// TestIngestJSON sends a JSON object and checks every field of the stored
// entry, the record's receive time (from Options.Now) and the counters.
func TestIngestJSON(t *testing.T) {
	received := time.Date(2026, time.August, 2, 11, 31, 11, 123456789, time.UTC)
	h := startHarness(t, harnessOptions{Ingest: Options{Now: func() time.Time { return received }}})
	sock := dialRaw(t, h.path)

	data := []byte(`{"msg":"hi","level":"error","user":"bob","nested":{"a":1}}`)
	send(t, sock, data)
	recs := h.nextRecords(t, 1)
	if got, want := recs[0].Time, received.UnixNano(); got != want {
		t.Errorf("record time = %v, want the receive clock's %v", time.Unix(0, got).UTC(), received)
	}
	if recs[0].Seq != shmring.FirstSeq {
		t.Errorf("record seq = %d, want %d", recs[0].Seq, shmring.FirstSeq)
	}
	got := decodeEntry(t, recs[0].Payload)
	want := ourCreds(record.Entry{Format: record.FormatJSON, Priority: 1<<3 | 3, Message: []byte("hi"),
		Fields: recordtest.Fields("user", "bob", "nested", `{"a":1}`)})
	recordtest.Check(t, data, &got, &want)

	st := h.in.Stats()
	w := wantStats(st, map[record.Format]uint64{record.FormatJSON: 1}, nil)
	w.Bytes = [NumFormats]uint64{}
	w.Bytes[record.FormatJSON] = uint64(len(data))
	w.Batches = 1
	checkStats(t, st, w)
}

// TestIngestGarbage sends what a confused or hostile client might: nothing
// may crash, every datagram is either stored exactly as parsed (with the
// sender's credentials) or dropped and counted, and ingest continues.
func TestIngestGarbage(t *testing.T) {
	h := startHarness(t, harnessOptions{})
	sock := dialRaw(t, h.path)

	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 512)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	tests := []struct {
		name string
		data []byte
		want *record.Entry // nil: the datagram is dropped
	}{
		{"invalid utf-8", []byte("bad \xff\xfe bytes \xc3\x28 kept"), &record.Entry{Format: record.FormatRaw,
			Flags: record.FlagDefaultPriority | record.FlagInvalidUTF8, Priority: record.DefaultPriority,
			Message: []byte("bad \xff\xfe bytes \xc3\x28 kept")}},
		{"invalid utf-8 in syslog", []byte("<11>app: \x80\x81"), &record.Entry{Format: record.FormatRFC3164,
			Flags: record.FlagInvalidUTF8, Priority: 11, Tag: []byte("app"), Message: []byte("\x80\x81")}},
		{"NULs", make([]byte, 300), &record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority,
			Priority: record.DefaultPriority, Message: make([]byte, 300)}},
		{"empty", nil, nil},
		{"one byte", []byte("x"), &record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority,
			Priority: record.DefaultPriority, Message: []byte("x")}},
		{"one <", []byte("<"), &record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority,
			Priority: record.DefaultPriority, Message: []byte("<")}},
		{"one {", []byte("{"), &record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority | record.FlagMalformed,
			Priority: record.DefaultPriority, Message: []byte("{")}},
		{"one newline", []byte("\n"), &record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority,
			Priority: record.DefaultPriority}},
		{"broken rfc5424", []byte("<13>1 not-a-time host app - - - hi"), &record.Entry{Format: record.FormatRaw,
			Flags: record.FlagMalformed, Priority: 13, Message: []byte("1 not-a-time host app - - - hi")}},
		// Random bytes: whatever the parser makes of them, stored exactly so.
		{"random", random, nil},
	}
	var p ingest.Parser
	stored := map[record.Format]uint64{}
	reasons := map[string]uint64{}
	var bytesIn [NumFormats]uint64
	for _, tt := range tests {
		want := tt.want
		if tt.name == "random" {
			want = new(record.Entry)
			p.Parse(tt.data, want)
			*want = decodeEntry(t, record.AppendEncode(nil, want)) // own the slices
		}
		if want == nil {
			reasons[ReasonEmpty]++
		} else {
			stored[want.Format]++
			bytesIn[want.Format] += uint64(len(tt.data))
			if want.Flags&record.FlagInvalidUTF8 != 0 {
				reasons[ReasonInvalidUTF8]++
			}
			if want.Flags&record.FlagMalformed != 0 {
				reasons[ReasonMalformed]++
			}
		}
		send(t, sock, tt.data)
		// A marker after each datagram proves a dropped one left nothing.
		send(t, sock, []byte("marker "+tt.name))
		stored[record.FormatRaw]++
		bytesIn[record.FormatRaw] += uint64(len("marker " + tt.name))

		n := 1
		if want != nil {
			n = 2
		}
		got := h.next(t, n)
		if want != nil {
			w := ourCreds(*want)
			recordtest.Check(t, tt.data, &got[0], &w)
		}
		marker := ourCreds(record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority,
			Priority: record.DefaultPriority, Message: []byte("marker " + tt.name)})
		recordtest.Check(t, []byte("marker"), &got[n-1], &marker)
	}
	st := h.in.Stats()
	w := wantStats(st, stored, reasons)
	w.Bytes = bytesIn
	checkStats(t, st, w)
}

// TestIngestOversize sends datagrams longer than Options.MaxMessage: each
// is stored cut to MaxMessage bytes, flagged and counted, and the next
// datagram is unaffected.
func TestIngestOversize(t *testing.T) {
	const maxMessage = 4096
	h := startHarness(t, harnessOptions{Ingest: Options{MaxMessage: maxMessage}})
	sock := dialRaw(t, h.path)

	prefix := "<11>app[77]: "
	long := []byte(prefix + strings.Repeat("0123456789", 1000)) // 10013 bytes
	exact := []byte(prefix + strings.Repeat("y", maxMessage-len(prefix)))
	send(t, sock, long)
	send(t, sock, exact)
	send(t, sock, []byte("<11>app[77]: short"))
	got := h.next(t, 3)

	want := ourCreds(record.Entry{Format: record.FormatRFC3164, Flags: record.FlagTruncated, Priority: 11,
		Tag: []byte("app"), ClaimedPID: 77, Message: long[len(prefix):maxMessage]})
	recordtest.Check(t, long, &got[0], &want)
	want = ourCreds(record.Entry{Format: record.FormatRFC3164, Priority: 11,
		Tag: []byte("app"), ClaimedPID: 77, Message: exact[len(prefix):]})
	recordtest.Check(t, exact, &got[1], &want)
	want = ourCreds(record.Entry{Format: record.FormatRFC3164, Priority: 11,
		Tag: []byte("app"), ClaimedPID: 77, Message: []byte("short")})
	recordtest.Check(t, []byte("short"), &got[2], &want)

	st := h.in.Stats()
	w := wantStats(st, map[record.Format]uint64{record.FormatRFC3164: 3}, map[string]uint64{ReasonTruncated: 1})
	w.Bytes[record.FormatRFC3164] = maxMessage + maxMessage + uint64(len("<11>app[77]: short"))
	checkStats(t, st, w)
}

// TestIngestEntryTooLarge uses the smallest ring, whose records hold at
// most 8 KiB, with datagrams and a memfd larger than that: each entry is
// stored cut down to fit (never dropped), flagged truncated, counted once,
// keeping the beginning of what was cut.
func TestIngestEntryTooLarge(t *testing.T) {
	h := startHarness(t, harnessOptions{RingSize: shmring.MinSize})
	maxPayload := h.w.MaxPayload()
	sock := dialRaw(t, h.path)
	big := strings.Repeat("abcdefghij", 2000) // 20000 bytes, > maxPayload

	tests := []struct {
		name  string
		data  []byte
		memfd bool
		// want: the entry as it would be without the limit; the test
		// checks that got is want with Fields dropped and each of
		// Message, Hostname and Tag a prefix of want's.
		want record.Entry
		// small: dropping the fields is enough, nothing is cut.
		small bool
	}{
		{"raw message", []byte(big), false, record.Entry{Format: record.FormatRaw,
			Flags: record.FlagDefaultPriority, Priority: record.DefaultPriority, Message: []byte(big)}, false},
		{"binary message", bytes.Repeat([]byte{0x80}, 20000), false, record.Entry{Format: record.FormatRaw,
			Flags: record.FlagDefaultPriority | record.FlagInvalidUTF8, Priority: record.DefaultPriority,
			Message: bytes.Repeat([]byte{0x80}, 20000)}, false},
		{"multi-byte runes", []byte(strings.Repeat("é€", 5000)), false, record.Entry{Format: record.FormatRaw,
			Flags: record.FlagDefaultPriority, Priority: record.DefaultPriority, Message: []byte(strings.Repeat("é€", 5000))}, false},
		{"fields", []byte(`{"msg":"m","a":"` + big + `"}`), false, record.Entry{Format: record.FormatJSON,
			Priority: record.DefaultPriority, Flags: record.FlagDefaultPriority, Message: []byte("m")}, true},
		{"json host", []byte(`{"msg":"m","host":"` + big + `"}`), false, record.Entry{Format: record.FormatJSON,
			Priority: record.DefaultPriority, Flags: record.FlagDefaultPriority, Message: []byte("m"), Hostname: []byte(big)}, false},
		{"rfc5424 app-name", []byte("<13>1 - h " + big + " - - - m"), false, record.Entry{Format: record.FormatRFC5424,
			Priority: 13, Hostname: []byte("h"), Tag: []byte(big), Message: []byte("m")}, false},
		{"journal memfd", []byte("SYSLOG_IDENTIFIER=j\nMESSAGE=" + big + "\n"), true, record.Entry{Format: record.FormatJournal,
			Priority: record.DefaultPriority, Flags: record.FlagDefaultPriority | record.FlagMalformed,
			Tag: []byte("j"), Message: []byte(big)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.in.Stats().Reasons
			if tt.memfd {
				fd := sealedMemfd(t, tt.data)
				send(t, sock, nil, fd)
				unix.Close(fd)
			} else {
				send(t, sock, tt.data)
			}
			send(t, sock, []byte("after "+tt.name))
			recs := h.nextRecords(t, 2)
			if n := len(recs[0].Payload); n > maxPayload || (!tt.small && n < maxPayload-8) {
				t.Errorf("stored %d bytes, want the most that fits: %d (minus at most 8 for a varint and a rune)", n, maxPayload)
			}
			got := decodeEntry(t, recs[0].Payload)
			want := ourCreds(tt.want)
			want.Flags |= record.FlagTruncated
			prefixOf := func(name string, got, full []byte) []byte {
				if !bytes.HasPrefix(full, got) {
					t.Errorf("%s = %.40q... (%d bytes), want a prefix of %.40q... (%d bytes)", name, got, len(got), full, len(full))
				}
				return got
			}
			want.Message = prefixOf("Message", got.Message, want.Message)
			want.Hostname = prefixOf("Hostname", got.Hostname, want.Hostname)
			want.Tag = prefixOf("Tag", got.Tag, want.Tag)
			if utf8.Valid(tt.want.Message) && !utf8.Valid(got.Message) {
				t.Errorf("Message cut inside a rune: ends %q", got.Message[max(0, len(got.Message)-4):])
			}
			if len(got.Message)+len(got.Hostname)+len(got.Tag) == 0 {
				t.Errorf("nothing of the message, hostname or tag kept")
			}
			recordtest.Check(t, []byte(tt.name), &got, &want)
			next := ourCreds(record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority,
				Priority: record.DefaultPriority, Message: []byte("after " + tt.name)})
			gotNext := decodeEntry(t, recs[1].Payload)
			recordtest.Check(t, []byte("after"), &gotNext, &next)
			after := h.in.Stats().Reasons
			if n := after[ReasonEntryTooLarge] - before[ReasonEntryTooLarge]; n != 1 {
				t.Errorf("Reasons[%q] grew by %d, want 1", ReasonEntryTooLarge, n)
			}
			// A memfd longer than a record is also cut when read.
			if n, want := after[ReasonTruncated]-before[ReasonTruncated], map[bool]uint64{true: 1}[tt.memfd]; n != want {
				t.Errorf("Reasons[%q] grew by %d, want %d", ReasonTruncated, n, want)
			}
		})
	}
}

// TestCutAtRune checks the cut shrink applies to each string of an entry.
func TestCutAtRune(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 2, "ab"},
		{"abc", 0, ""},
		{"abc", -1, ""},
		{"abc", 3, "abc"},
		{"abc", 9, "abc"},
		{"aé", 2, "a"},  // inside the 2-byte é
		{"a€", 3, "a"},  // inside the 3-byte €
		{"a€", 4, "a€"}, // after it
		{"a😀", 4, "a"},  // inside a 4-byte rune
		{"\x80\x80\x80\x80\x80", 3, "\x80\x80\x80"}, // not UTF-8: cut exactly
		{"a\xe2\x82", 2, "a\xe2"},                   // truncated rune: not UTF-8 either
		{"é\x80\x80", 3, "é\x80"},                   // stray continuation after a whole rune
	}
	for _, tt := range tests {
		if got := cutAtRune([]byte(tt.in), tt.n); string(got) != tt.want {
			t.Errorf("cutAtRune(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestIngestBatching checks that datagrams queued together are stored with
// one commit, and that a burst from one blocking sender arrives exactly
// once and in order.
func TestIngestBatching(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	sock := dialRaw(t, h.path)

	// Fill the socket queue before Run starts (the kernel takes
	// net.unix.max_dgram_qlen+1 datagrams, then EAGAIN): the first
	// recvmmsg reads them all, so they are one batch.
	var queued int
	for ; queued < 64; queued++ {
		err := unix.Sendmsg(sock, fmt.Appendf(nil, "queued %02d", queued), nil, nil, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	if queued < 2 {
		t.Fatalf("only %d datagrams fit in the socket queue", queued)
	}
	h.start()
	got := h.next(t, queued)
	for i, e := range got {
		if want := fmt.Sprintf("queued %02d", i); string(e.Message) != want {
			t.Errorf("record %d: Message = %q, want %q", i, e.Message, want)
		}
	}
	if b := h.in.Stats().Batches; b != 1 {
		t.Errorf("%d datagrams queued before Run were stored in %d batches, want 1", queued, b)
	}

	const n = 500
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := unix.Write(sock, fmt.Appendf(nil, "burst %03d", i)); err != nil {
				errc <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		errc <- nil
	}()
	recs := h.nextRecords(t, n)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		e := decodeEntry(t, rec.Payload)
		if want := fmt.Sprintf("burst %03d", i); string(e.Message) != want {
			t.Fatalf("record %d: Message = %q, want %q (lost, duplicated or reordered)", i, e.Message, want)
		}
		if want := uint64(shmring.FirstSeq + queued + i); rec.Seq != want {
			t.Errorf("record %d: seq %d, want %d", i, rec.Seq, want)
		}
		if e.PID != uint32(os.Getpid()) || e.Flags&record.FlagCreds == 0 {
			t.Errorf("record %d: PID %d flags %s, want our pid %d with Creds", i, e.PID, recordtest.FlagNames(e.Flags), os.Getpid())
		}
	}
	st := h.in.Stats()
	if got, want := st.Datagrams[record.FormatRaw], uint64(queued+n); got != want {
		t.Errorf("Stats().Datagrams[raw] = %d, want %d", got, want)
	}
	if st.Batches < 2 || st.Batches > n+1 {
		t.Errorf("Stats().Batches = %d, want between 2 and %d", st.Batches, n+1)
	}
	t.Logf("%d datagrams in %d batches", queued+n, st.Batches)
}

// TestIngestStop cancels Run while it waits for datagrams: Run returns nil,
// what it stored stays published, datagrams sent afterwards wait in the
// socket, and a new Ingester on the same socket and ring (an in-process
// restart) stores them, continuing the sequence numbers.
func TestIngestStop(t *testing.T) {
	h := startHarness(t, harnessOptions{})
	sock := dialRaw(t, h.path)

	send(t, sock, []byte("before stop"))
	if got := h.next1(t); string(got.Message) != "before stop" {
		t.Fatalf("Message = %q, want %q", got.Message, "before stop")
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run after cancel while idle = %v, want nil", err)
	}
	if got, want := h.r.Head(), uint64(shmring.FirstSeq+1); got != want {
		t.Errorf("ring head after stop = %d, want %d", got, want)
	}

	send(t, sock, []byte("while stopped"))
	h.in = h.newIngester(Options{})
	h.start()
	recs := h.nextRecords(t, 1)
	if got := decodeEntry(t, recs[0].Payload); string(got.Message) != "while stopped" {
		t.Errorf("after restart: Message = %q, want %q", got.Message, "while stopped")
	}
	if want := uint64(shmring.FirstSeq + 1); recs[0].Seq != want {
		t.Errorf("after restart: seq %d, want %d", recs[0].Seq, want)
	}
	if err := h.stop(); err != nil {
		t.Fatalf("second Run after cancel = %v, want nil", err)
	}

	// A context cancelled before Run starts: Run returns nil at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	in := h.newIngester(Options{})
	go func() { done <- in.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run with a cancelled context = %v, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Run with a cancelled context did not return within %v", waitTimeout)
	}
}

// TestIngestHandOff stops one Ingester and starts the next on the same
// socket and ring while a client keeps sending: no datagram is lost or
// stored twice.
func TestIngestHandOff(t *testing.T) {
	const n = 300
	h := startHarness(t, harnessOptions{})
	sock := dialRaw(t, h.path)
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := unix.Write(sock, fmt.Appendf(nil, "msg %03d", i)); err != nil {
				errc <- fmt.Errorf("send %d: %w", i, err)
				return
			}
		}
		errc <- nil
	}()

	recs := h.nextRecords(t, 100)
	if err := h.stop(); err != nil {
		t.Fatalf("first Run = %v, want nil", err)
	}
	first := h.in.Stats().Datagrams[record.FormatRaw]
	h.in = h.newIngester(Options{})
	h.start()
	recs = append(recs, h.nextRecords(t, n-100)...)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for i, rec := range recs {
		e := decodeEntry(t, rec.Payload)
		if want := fmt.Sprintf("msg %03d", i); string(e.Message) != want {
			t.Fatalf("record %d: Message = %q, want %q (lost, duplicated or reordered)", i, e.Message, want)
		}
	}
	if second := h.in.Stats().Datagrams[record.FormatRaw]; first+second != n {
		t.Errorf("stored %d + %d datagrams, want %d in all", first, second, n)
	}
	t.Logf("first Ingester stored %d, second %d", first, n-first)
}

// TestIngestStoreAllocs checks that the steady-state work of one batch
// (receive, parse, stamp with credentials and origin fields, encode, add,
// publish) allocates nothing, for a sample of every format: the sender is
// cached, and checking it in each batch does not allocate. It drives the same steps as Run, one datagram at
// a time, on the test goroutine so that nothing else allocates meanwhile.
func TestIngestStoreAllocs(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	sock := dialRaw(t, h.path)
	const runs = 100
	var stored uint64
	for _, s := range ingesttest.Samples {
		data := []byte(s.Data)
		if n := testing.AllocsPerRun(runs, func() { h.storeOne(t, sock, data) }); n != 0 {
			t.Errorf("%s: %v allocations per datagram, want 0", s.Name, n)
		}
		stored += runs + 1 // AllocsPerRun's warm-up run too
	}
	st := h.in.Stats()
	var total uint64
	for _, n := range st.Datagrams {
		total += n
	}
	if total != stored {
		t.Errorf("stored %d datagrams, want %d", total, stored)
	}
	if got, want := h.r.Head(), shmring.FirstSeq+stored; got != want {
		t.Errorf("ring head = %d, want %d", got, want)
	}
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe)
	if rec, _, err := h.r.Cursor(h.r.Head() - 1).Next(); err != nil {
		t.Error(err)
	} else if e := decodeEntry(t, rec.Payload); string(e.Origin.Exe) != exe || len(e.Origin.Comm) == 0 {
		t.Errorf("last record: exe %q, comm %q; want this test binary %q and its comm", e.Origin.Exe, e.Origin.Comm, exe)
	}
}

// storeOne sends data on sock and takes it through the steps of Run (a
// batch of one) on the calling goroutine, as allocation tests need.
func (h *harness) storeOne(t *testing.T, sock int, data []byte) {
	if _, err := unix.Write(sock, data); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs, err := h.in.rx.Receive()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Receive = %d datagrams, %v; want 1", len(msgs), err)
	}
	h.in.origin.Begin(time.Now())
	h.in.store(&msgs[0], 1)
	h.in.w.Publish()
}

// Health follows Run: ErrNotRunning before Run starts and after it
// returns; nil while Run waits for datagrams, whatever the limit (an idle
// socket is not a stuck loop).
func TestHealth(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	if err := h.in.Health(time.Hour); !errors.Is(err, ErrNotRunning) {
		t.Errorf("before Run: Health = %v, want ErrNotRunning", err)
	}
	h.start()
	sock := dialRaw(t, h.path)
	send(t, sock, []byte("one"))
	h.next1(t)
	// With a zero limit only waiting for datagrams is healthy: Run gets
	// back to waiting once the batch is published.
	waitFor(t, func() bool { return h.in.Health(0) == nil })
	if err := h.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := h.in.Health(time.Hour); !errors.Is(err, ErrNotRunning) {
		t.Errorf("after Run returned: Health = %v, want ErrNotRunning", err)
	}
}
