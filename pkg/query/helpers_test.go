//go:build linux

package query

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// baseTime is the receive time of record 0; record s is received at
// tsFor(s).
const baseTime = int64(1_764_000_000_000_000_000)

func tsFor(seq uint64) int64 { return baseTime + int64(seq)*1_000_000 }

var (
	testTags  = []string{"sshd", "cron", "app"}
	testWords = []string{"ok", "failed", "failure", "retry", "done"}
)

// entryFor derives a record's entry from its sequence number, so that tests
// can say which records a filter keeps without reading the ring.
// testUnits and testComms are the origin fields of entryFor's records
// with credentials: unit testUnits[seq%7] (none for "") and comm
// testComms[seq%4].
var (
	testUnits = [7]string{"demo.service", "demo-worker.service", "sshd.service", "nginx.service", "demo.socket", "cron.service", ""}
	testComms = [4]string{"demo", "sshd", "cat", "logger"}
)

func entryFor(seq uint64) record.Entry {
	e := record.Entry{
		Format:   record.FormatRFC3164,
		Priority: uint8(seq%24)<<3 | uint8(seq%8),
		Hostname: []byte("host"),
		Tag:      []byte(testTags[seq%3]),
		Message:  fmt.Appendf(nil, "message %d %s", seq, testWords[seq%5]),
		PID:      1000 + uint32(seq%5),
		UID:      uint32(seq % 3),
	}
	if seq%2 == 0 {
		e.Flags |= record.FlagCreds
		if u := testUnits[seq%7]; u != "" {
			e.Origin = record.Origin{Unit: []byte(u), Comm: []byte(testComms[seq%4]), Slice: []byte("system.slice")}
		}
	}
	if seq%4 == 0 {
		e.Fields = []record.Field{
			{Key: []byte("SDID.x"), Value: []byte("y")},
			{Key: []byte("trace_id"), Value: fmt.Appendf(nil, "t%d", seq%8)},
		}
	}
	return e
}

// testRing is a ring with its writer (owned by the test goroutine) and a
// reader.
type testRing struct {
	t *testing.T
	w *shmring.Writer
	r *shmring.Reader
}

func newRingForTest(t *testing.T, size uint64) *testRing {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ring")
	w, err := shmring.OpenWriter(path, shmring.Options{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	r, err := shmring.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return &testRing{t: t, w: w, r: r}
}

// write appends n records made by entryFor and publishes them every
// batch records. It returns the last sequence number written.
func (tr *testRing) write(n int, batch int) uint64 {
	tr.t.Helper()
	var buf []byte
	var last uint64
	for i := range n {
		seq := tr.w.Stats().Head
		e := entryFor(seq)
		buf = record.AppendEncode(buf[:0], &e)
		got, err := tr.w.Add(tsFor(seq), buf)
		if err != nil {
			tr.t.Fatal(err)
		}
		if got != seq {
			tr.t.Fatalf("Add returned seq %d, want %d", got, seq)
		}
		last = seq
		if (i+1)%batch == 0 {
			tr.w.Publish()
		}
	}
	tr.w.Publish()
	return last
}

// held returns the sequence numbers the ring holds now.
func (tr *testRing) held() (oldest, head uint64) {
	st := tr.r.Stats()
	return st.Oldest, st.Head
}

// want lists the held sequence numbers in [from, to) for which keep is
// true.
func want(from, to uint64, keep func(seq uint64) bool) []uint64 {
	var out []uint64
	for s := from; s < to; s++ {
		if keep == nil || keep(s) {
			out = append(out, s)
		}
	}
	return out
}

func lastN(s []uint64, n int) []uint64 {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// collector is a Handler that checks and keeps what it receives.
type collector struct {
	t       testing.TB
	mu      sync.Mutex
	seqs    []uint64
	lost    uint64
	losses  int
	pings   int
	last    uint64
	onRec   func(seq uint64) // called after each record, outside mu
	changed chan struct{}    // signalled (non-blocking) after each event
}

func newCollector(t testing.TB) *collector {
	return &collector{t: t, changed: make(chan struct{}, 1)}
}

func (c *collector) handler() Handler {
	return Handler{
		Record: func(r Record) error {
			var e record.Entry
			if err := record.Decode(r.Payload, &e); err != nil {
				return fmt.Errorf("record %d: %w", r.Seq, err)
			}
			if want := entryFor(r.Seq); !e.Equal(&want) {
				return fmt.Errorf("record %d: payload is not entryFor(%d)", r.Seq, r.Seq)
			}
			if r.Time != tsFor(r.Seq) {
				return fmt.Errorf("record %d: time %d", r.Seq, r.Time)
			}
			c.mu.Lock()
			if r.Seq <= c.last {
				c.mu.Unlock()
				return fmt.Errorf("record %d after %d", r.Seq, c.last)
			}
			c.last = r.Seq
			c.seqs = append(c.seqs, r.Seq)
			c.mu.Unlock()
			if c.onRec != nil {
				c.onRec(r.Seq)
			}
			c.signal()
			return nil
		},
		Lost: func(lost, next uint64) error {
			c.mu.Lock()
			c.lost += lost
			c.losses++
			c.last = next - 1
			c.mu.Unlock()
			c.signal()
			return nil
		},
		Ping: func() error {
			c.mu.Lock()
			c.pings++
			c.mu.Unlock()
			c.signal()
			return nil
		},
	}
}

func (c *collector) signal() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// snapshot returns a copy of what was received.
func (c *collector) snapshot() (seqs []uint64, lost uint64, pings int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.seqs), c.lost, c.pings
}

// waitUntil waits for cond over the collector's state, failing after a
// generous bound.
func (c *collector) waitUntil(t testing.TB, what string, cond func(seqs []uint64, lost uint64, pings int) bool) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		if cond(c.snapshot()) {
			return
		}
		select {
		case <-c.changed:
		case <-deadline.C:
			seqs, lost, pings := c.snapshot()
			t.Fatalf("timed out waiting for %s: %d records (last %v), %d lost, %d pings", what, len(seqs), lastN(seqs, 1), lost, pings)
		}
	}
}

// waitFor polls cond until it holds, failing after a generous bound. It is
// for state with no event to wait on (goroutine counts, server counters).
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

// testServer is a Server serving on a loopback listener.
type testServer struct {
	*Server
	addr     string
	serveErr chan error
}

// newServerForTest serves r on a loopback port to clients that read every
// record even if they prove nothing (AnonymousAll), as the protocol's
// tests need; the access tests use serveForTest.
func newServerForTest(t testing.TB, r *shmring.Reader, opts Options) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.AnonymousAll = true
	return serveForTest(t, NewServer(r, opts), ln)
}

// serveForTest serves srv on ln until the test ends.
func serveForTest(t testing.TB, srv *Server, ln net.Listener) *testServer {
	t.Helper()
	ts := &testServer{Server: srv, addr: ln.Addr().String(), serveErr: make(chan error, 1)}
	go func() { ts.serveErr <- ts.Serve(ln) }()
	t.Cleanup(func() { ts.shutdown(t) })
	return ts
}

// shutdown shuts the server down and checks that Serve returned nil. It
// may be called more than once.
func (ts *testServer) shutdown(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if ts.serveErr == nil {
		return
	}
	if err := <-ts.serveErr; err != nil {
		t.Errorf("Serve: %v", err)
	}
	ts.serveErr = nil
}

func dialForTest(t testing.TB, addr string, opts DialOptions) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawConn is a hand-driven client connection for protocol-level tests.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	fr *FrameReader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	network := "tcp"
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		network, addr = "unix", path
	}
	nc, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, fr: NewFrameReader(nc, MaxServerFrame)}
}

func (rc *rawConn) send(t FrameType, body string) {
	rc.t.Helper()
	if _, err := rc.nc.Write(AppendFrame(nil, t, []byte(body))); err != nil {
		rc.t.Fatal(err)
	}
}

func (rc *rawConn) hello() {
	rc.t.Helper()
	rc.send(FrameHello, `{"protocol":1,"client":"test"}`)
	if t, body := rc.next(); t != FrameWelcome {
		rc.t.Fatalf("hello answered with %s %s", t, body)
	}
}

func (rc *rawConn) next() (FrameType, []byte) {
	rc.t.Helper()
	t, body, err := rc.fr.Next()
	if err != nil {
		rc.t.Fatalf("read frame: %v", err)
	}
	return t, bytes.Clone(body)
}

// expectError reads an X frame with the given code.
func (rc *rawConn) expectError(code Code) *Error {
	rc.t.Helper()
	t, body := rc.next()
	if t != FrameError {
		rc.t.Fatalf("got %s %s, want X %s", t, body, code)
	}
	xe, err := DecodeError(body)
	if err != nil {
		rc.t.Fatal(err)
	}
	if xe.Code != code {
		rc.t.Fatalf("got X %s (%s), want %s", xe.Code, xe.Message, code)
	}
	return xe
}

// expectClosed reads until the server closes the connection.
func (rc *rawConn) expectClosed() {
	rc.t.Helper()
	t, body, err := rc.fr.Next()
	if err == nil {
		rc.t.Fatalf("got %s %s, want the connection closed", t, body)
	}
	if !errors.Is(err, io.EOF) {
		rc.t.Fatalf("got %v, want EOF", err)
	}
}
