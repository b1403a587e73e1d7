//go:build linux

package query

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// query runs req over c and returns what arrived.
func query(t *testing.T, c *Client, req Request) ([]uint64, End) {
	t.Helper()
	col := newCollector(t)
	end, err := c.Query(context.Background(), req, col.handler())
	if err != nil {
		t.Fatalf("Query(%s): %v", marshalJSON(req), err)
	}
	seqs, lost, _ := col.snapshot()
	if lost != 0 {
		t.Fatalf("Query(%s): %d lost", marshalJSON(req), lost)
	}
	return seqs, end
}

// TestLatest asks for the latest N records with every filter, over one
// kept-alive connection, and checks that the answer is exact and the same
// as Run's on the ring itself.
func TestLatest(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	tr.write(3000, 64)
	oldest, head := tr.held()
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	if h := c.Hello(); h.Protocol != Version || h.Server != ServerName || h.Head != head || h.Oldest != oldest ||
		h.MaxN != NoMaxN || h.RingID != fmt.Sprintf("%016x", tr.r.Stats().Created.UnixNano()) || len(h.RingID) != 16 {
		t.Fatalf("hello reply %+v", h)
	}
	queries := 0
	for _, tc := range filterCases {
		for _, n := range []int64{-1, 0, 1, 7, 100, 100_000} {
			req := Request{ID: uint64(queries), Filter: tc.filter}
			wantN := DefaultN
			if n >= 0 {
				req.N = new(n)
				wantN = int(n)
			}
			got, end := query(t, c, req)
			if w := lastN(want(oldest, head, tc.keep), wantN); !slices.Equal(got, w) {
				t.Fatalf("%s n=%d: got %v, want %v", tc.name, n, got, w)
			}
			if want := (End{ID: uint64(queries), Cursor: head - 1, Reason: ReasonDone}); end != want {
				t.Fatalf("%s n=%d: end %+v, want %+v", tc.name, n, end, want)
			}
			local, localEnd := runLocal(t, tr.r, req)
			if !slices.Equal(got, local) || localEnd != end {
				t.Fatalf("%s n=%d: TCP and Run disagree", tc.name, n)
			}
			queries++
		}
	}
	if st := srv.Stats(); st.Requests[KindLatest].OK != uint64(queries) || st.ConnsOpen != 1 || st.ConnsTotal != 1 {
		t.Fatalf("stats %+v after %d queries on one connection", st, queries)
	}
}

// TestLatestLargeBatches sends records larger than a batch and more
// records than fit one batch.
func TestLatestLargeBatches(t *testing.T) {
	tr := newRingForTest(t, 4<<20)
	tr.write(20000, 1000)
	var big []byte
	for range 3 {
		e := entryFor(tr.w.Stats().Head)
		e.Message = append(e.Message, strings.Repeat("x", 200<<10)...)
		big = record.AppendEncode(big[:0], &e)
		tr.w.Append(tsFor(tr.w.Stats().Head), big)
	}
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	n := 0
	end, err := c.Query(context.Background(), Request{N: new(int64(30000))}, Handler{Record: func(r Record) error {
		n++
		return nil
	}})
	if err != nil || n != 20003 || end.Cursor != 20003 {
		t.Fatalf("%d records, end %+v, %v", n, end, err)
	}
}

func TestAfterResumeExactlyOnce(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(1000, 10)
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	for _, tc := range filterCases {
		var all []uint64
		cursor := uint64(0)
		for round := 0; ; round++ {
			got, end := query(t, c, Request{After: new(cursor), N: new(int64(11)), Filter: tc.filter})
			all = append(all, got...)
			if end.Cursor < cursor || (len(got) > 0 && end.Cursor < got[len(got)-1]) {
				t.Fatalf("%s: cursor went from %d to %d", tc.name, cursor, end.Cursor)
			}
			cursor = end.Cursor
			if len(got) < 11 {
				break
			}
		}
		if w := want(1, 1001, tc.keep); !slices.Equal(all, w) {
			t.Fatalf("%s: got %v, want %v", tc.name, all, w)
		}
	}
}

func TestFollow(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	keep := func(s uint64) bool { return s%3 == 0 }
	col := newCollector(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		end End
		err error
	}
	done := make(chan result, 1)
	go func() {
		end, err := c.Query(ctx, Request{N: new(int64(5)), Follow: true, Filter: Filter{Tag: "sshd"}}, col.handler())
		done <- result{end, err}
	}()
	// The backlog arrives first: the latest 5 matching.
	col.waitUntil(t, "the backlog", func(s []uint64, _ uint64, _ int) bool { return len(s) >= 5 })
	waitFor(t, "the follow to start", func() bool { return srv.Stats().FollowersActive == 1 })
	// Then records written while following, in several publishes.
	for range 10 {
		tr.write(50, 7)
	}
	for tr.w.Stats().Head%3 != 1 {
		tr.write(1, 1) // end on a matching record, so that it is known to be examined
	}
	final := tr.w.Stats().Head - 1
	col.waitUntil(t, "the followed records", func(s []uint64, _ uint64, _ int) bool { return s[len(s)-1] == final })
	cancel()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	seqs, lost, _ := col.snapshot()
	if w := append(lastN(want(1, 101, keep), 5), want(101, final+1, keep)...); !slices.Equal(seqs, w) || lost != 0 {
		t.Fatalf("got %v (%d lost), want %v", seqs, lost, w)
	}
	if res.end.Reason != ReasonCancelled || res.end.Cursor != final {
		t.Fatalf("end %+v, want cancelled at %d", res.end, final)
	}
	// The connection stays usable after a cancelled follow.
	got, end := query(t, c, Request{N: new(int64(2))})
	if !slices.Equal(got, []uint64{final - 1, final}) || end.Reason != ReasonDone {
		t.Fatalf("after the follow: %v %+v", got, end)
	}
	st := srv.Stats()
	if st.Requests[KindFollow].OK != 1 || st.Requests[KindLatest].OK != 1 || st.FollowersActive != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// smallReadBuffer dials with a small fixed socket receive buffer (no
// autotuning), so that a client that stops reading stalls the server's
// writes after a known amount. It is still several loopback segments
// (64 KiB): smaller windows make TCP crawl.
func smallReadBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	nc.(*net.TCPConn).SetReadBuffer(256 << 10)
	return nc, nil
}

// TestFollowLapped stalls a follower while the writer laps the ring, and
// checks that the L frames account for exactly what it missed.
func TestFollowLapped(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	start := tr.write(10, 10)
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{DialContext: smallReadBuffer})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	const written = 100_000
	final := start + written
	col := newCollector(t)
	col.onRec = func(seq uint64) {
		if seq == start+1 {
			<-release // stall: the server blocks on the full socket
		}
		if seq == final {
			cancel()
		}
	}
	done := make(chan error, 1)
	var end End
	go func() {
		var err error
		end, err = c.Query(ctx, Request{After: new(start), Follow: true}, col.handler())
		done <- err
	}()
	// 100,000 records of ~130 bytes: far more than the ring and the socket
	// buffers hold. The writer never waits for the stalled follower.
	last := tr.write(written, 100)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seqs, lost, _ := col.snapshot()
	if lost == 0 {
		t.Fatal("the follower was not lapped")
	}
	if got := uint64(len(seqs)) + lost; got != written || last != final {
		t.Fatalf("%d received + %d lost = %d, want %d written", len(seqs), lost, got, written)
	}
	if end.Reason != ReasonCancelled || end.Cursor != last {
		t.Fatalf("end %+v, want cancelled at %d", end, last)
	}
	if st := srv.Stats(); st.RecordsLost != lost {
		t.Fatalf("server counted %d lost, client %d", st.RecordsLost, lost)
	}
}

func TestCancelWhileQuiet(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(10, 10)
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	col := newCollector(t)
	h := col.handler()
	rec := h.Record
	h.Record = func(r Record) error {
		err := rec(r)
		if r.Seq == 10 {
			cancel() // nothing more is coming: the server is waiting in the ring
		}
		return err
	}
	end, err := c.Query(ctx, Request{Follow: true}, h)
	if err != nil || end != (End{Cursor: 10, Reason: ReasonCancelled}) {
		t.Fatalf("end %+v, %v", end, err)
	}
}

func TestServerPing(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	srv := newServerForTest(t, tr.r, Options{PingInterval: 10 * time.Millisecond})
	c := dialForTest(t, srv.addr, DialOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	pings := 0
	end, err := c.Query(ctx, Request{Follow: true}, Handler{Ping: func() error {
		if pings++; pings == 3 {
			cancel()
		}
		return nil
	}})
	if err != nil || end.Reason != ReasonCancelled || pings != 3 {
		t.Fatalf("end %+v, %v after %d pings", end, err, pings)
	}
}

// TestShutdownResume shuts the server down under a follow and resumes
// from the cursor it gave on a new server: every record arrives once.
func TestShutdownResume(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	col := newCollector(t)
	done := make(chan error, 1)
	var end End
	go func() {
		var err error
		end, err = c.Query(context.Background(), Request{After: new(uint64(0)), Follow: true}, col.handler())
		done <- err
	}()
	col.waitUntil(t, "the first records", func(s []uint64, _ uint64, _ int) bool { return len(s) == 100 })
	shut := make(chan struct{})
	go func() {
		srv.shutdown(t)
		close(shut)
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if end.Reason != ReasonShutdown || end.Cursor != 100 {
		t.Fatalf("end %+v, want shutdown at 100", end)
	}
	var xe *Error
	if _, err := c.Query(context.Background(), Request{}, Handler{}); !errors.As(err, &xe) || xe.Code != CodeShutdown {
		t.Fatalf("query on a server shutting down: %v, want X shutdown", err)
	}
	c.Close()
	<-shut

	tr.write(50, 10)
	srv2 := newServerForTest(t, tr.r, Options{})
	c2 := dialForTest(t, srv2.addr, DialOptions{})
	rest, end2 := query(t, c2, Request{After: new(end.Cursor)})
	seqs, _, _ := col.snapshot()
	if all := append(seqs, rest...); !slices.Equal(all, want(1, 151, nil)) || end2.Cursor != 150 {
		t.Fatalf("%d records before shutdown, %d after (end %+v): want 1..150 once each", len(seqs), len(rest), end2)
	}
}

// TestShutdownMidDump shuts the server down while it streams a large
// response to a slow client: the response ends with E shutdown and a cursor
// from which the rest follows exactly.
func TestShutdownMidDump(t *testing.T) {
	tr := newRingForTest(t, 16<<20)
	tr.write(100_000, 1000)
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{DialContext: smallReadBuffer})
	shut := make(chan error, 1)
	var got []uint64
	end, err := c.Query(context.Background(), Request{After: new(uint64(0))}, Handler{Record: func(r Record) error {
		got = append(got, r.Seq)
		if len(got) == 1000 {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				shut <- srv.Shutdown(ctx)
			}()
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if end.Reason != ReasonShutdown || end.Cursor != got[len(got)-1] || len(got) == 100_000 {
		t.Fatalf("end %+v after %d records", end, len(got))
	}
	rest, _ := runLocal(t, tr.r, Request{After: new(end.Cursor)})
	if all := append(got, rest...); !slices.Equal(all, want(1, 100_001, nil)) {
		t.Fatalf("%d + %d records, want 1..100000 once each", len(got), len(rest))
	}
}

func TestBusy(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	srv := newServerForTest(t, tr.r, Options{MaxConns: 2})
	c1 := dialForTest(t, srv.addr, DialOptions{})
	dialForTest(t, srv.addr, DialOptions{})
	_, err := Dial(context.Background(), srv.addr, DialOptions{})
	var xe *Error
	if !errors.As(err, &xe) || xe.Code != CodeBusy || xe.RetryAfter != DefaultRetryAfter || !strings.Contains(xe.Message, "(2)") {
		t.Fatalf("third connection: %v, want X busy with retry after", err)
	}
	waitFor(t, "the refused connection closed", func() bool { return srv.Stats().ConnsOpen == 2 })
	if st := srv.Stats(); st.ConnsRejected != 1 || st.Handshakes != 0 {
		t.Fatalf("stats %+v", st)
	}
	c1.Close()
	waitFor(t, "the server to notice the closed connection", func() bool { return srv.Stats().ConnsOpen == 1 })
	c3 := dialForTest(t, srv.addr, DialOptions{})
	if _, end := query(t, c3, Request{}); end.Reason != ReasonDone {
		t.Fatalf("end %+v", end)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	srv := newServerForTest(t, tr.r, Options{HandshakeTimeout: 50 * time.Millisecond})
	rc := dialRaw(t, srv.addr)
	rc.expectError(CodeTimeout)
	rc.expectClosed()
}

func TestIdleTimeout(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	srv := newServerForTest(t, tr.r, Options{IdleTimeout: 50 * time.Millisecond})
	rc := dialRaw(t, srv.addr)
	rc.hello()
	rc.send(FrameQuery, `{"id":1}`)
	if typ, body := rc.next(); typ != FrameEnd {
		t.Fatalf("got %s %s", typ, body)
	}
	rc.expectClosed()
}

func TestVersionMismatch(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	srv := newServerForTest(t, tr.r, Options{})
	rc := dialRaw(t, srv.addr)
	rc.send(FrameHello, `{"protocol":2,"client":"future"}`)
	xe := rc.expectError(CodeVersion)
	if !strings.Contains(xe.Message, "version 2") || !strings.Contains(xe.Message, "version 1") {
		t.Errorf("message %q does not name both versions", xe.Message)
	}
	rc.expectClosed()

	_, err := Dial(context.Background(), srv.addr, DialOptions{protocol: 2})
	if !errors.As(err, &xe) || xe.Code != CodeVersion {
		t.Fatalf("Dial announcing version 2: %v", err)
	}
	if !strings.Contains(err.Error(), "version 2") || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("error %q does not name both versions", err)
	}
}

func TestBadRequestKeepsConnection(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	tr.write(20, 10)
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	for _, tc := range []struct {
		req  Request
		code Code
		text string
	}{
		{Request{ID: 1, Filter: Filter{Grep: "fail(ed"}}, CodeBadRequest, "filter.grep"},
		{Request{ID: 2, N: new(int64(-1))}, CodeBadRequest, "n: -1"},
		{Request{ID: 3, Filter: Filter{Priority: new(9)}}, CodeBadRequest, "filter.priority"},
	} {
		end, err := c.Query(context.Background(), tc.req, Handler{})
		var xe *Error
		if !errors.As(err, &xe) || xe.Code != tc.code || xe.ID != tc.req.ID || end.ID != tc.req.ID || !strings.Contains(xe.Message, tc.text) {
			t.Fatalf("%s: %v (end %+v), want %s naming %q", marshalJSON(tc.req), err, end, tc.code, tc.text)
		}
		if got, _ := query(t, c, Request{N: new(int64(3))}); !slices.Equal(got, []uint64{18, 19, 20}) {
			t.Fatalf("after a bad request: %v", got)
		}
	}
	// Unknown keys, straight on the wire.
	rc := dialRaw(t, srv.addr)
	rc.hello()
	rc.send(FrameQuery, `{"id":42,"filter":{"tags":"sshd"}}`)
	if xe := rc.expectError(CodeBadRequest); xe.ID != 42 || !strings.Contains(xe.Message, "tags") {
		t.Fatalf("unknown key: %+v", xe)
	}
	rc.send(FrameQuery, `{"id":43,"n":1}`)
	if typ, body := rc.next(); typ != FrameBatch {
		t.Fatalf("got %s %s", typ, body)
	}
	if typ, body := rc.next(); typ != FrameEnd || string(body) != `{"id":43,"cursor":20,"reason":"done"}` {
		t.Fatalf("got %s %s", typ, body)
	}
	st := srv.Stats()
	latest, follow := st.Requests[KindLatest], st.Requests[KindFollow]
	if latest.BadRequest != 4 || follow.BadRequest != 0 || latest.OK != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestProtocolViolations(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	srv := newServerForTest(t, tr.r, Options{})
	huge := make([]byte, 4)
	binary.LittleEndian.PutUint32(huge, MaxClientFrame+1)
	for _, tc := range []struct {
		name  string
		hello bool
		send  []byte
	}{
		{"query before hello", false, AppendFrame(nil, FrameQuery, []byte(`{}`))},
		{"hello not JSON", false, AppendFrame(nil, FrameHello, []byte(`protocol 1`))},
		{"hello without protocol", false, AppendFrame(nil, FrameHello, []byte(`{"client":"x"}`))},
		{"huge frame before hello", false, huge},
		{"huge frame", true, huge},
		{"empty frame", true, []byte{0, 0, 0, 0}},
		{"unknown type", true, AppendFrame(nil, 'Z', nil)},
		{"server frame", true, AppendFrame(nil, FrameBatch, []byte{0, 0, 0, 0})},
		{"second hello", true, AppendFrame(nil, FrameHello, []byte(`{"protocol":1}`))},
		{"cancel with body", true, AppendFrame(nil, FrameCancel, []byte("x"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, srv.addr)
			if tc.hello {
				rc.hello()
			}
			rc.nc.Write(tc.send)
			rc.expectError(CodeBadRequest)
			rc.expectClosed()
		})
	}
}

// TestStalledClient has one follower that never reads while another
// follows a fast writer: the second receives everything and the writer
// never waits.
func TestStalledClient(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	start := tr.write(1, 1)
	// Under the race detector the test can run past the default write
	// timeout, which would end the stalled follow (as it should: see
	// TestWriteTimeoutDropsStalledClient), not what this test is about.
	srv := newServerForTest(t, tr.r, Options{WriteTimeout: time.Hour})

	stalled, err := smallReadBuffer(context.Background(), "tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.Write(AppendFrame(nil, FrameHello, []byte(`{"protocol":1}`)))
	stalled.Write(AppendFrame(nil, FrameQuery, fmt.Appendf(nil, `{"after":%d,"follow":true}`, start)))

	c := dialForTest(t, srv.addr, DialOptions{})
	col := newCollector(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Query(ctx, Request{After: new(start), Follow: true}, col.handler())
		done <- err
	}()
	waitFor(t, "both follows", func() bool { return srv.Stats().FollowersActive == 2 })
	// 20 MB in steps the healthy follower keeps up with (so it loses
	// nothing), far more than the stalled one's socket buffers hold.
	var last uint64
	for range 100 {
		last = tr.write(1000, 100)
		col.waitUntil(t, "the healthy follower", func(s []uint64, _ uint64, _ int) bool { return len(s) > 0 && s[len(s)-1] == last })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	seqs, lost, _ := col.snapshot()
	if !slices.Equal(seqs, want(start+1, last+1, nil)) || lost != 0 {
		t.Fatalf("healthy follower: %d records, %d lost", len(seqs), lost)
	}
	if st := srv.Stats(); st.FollowersActive != 1 {
		t.Fatalf("the stalled follow ended: %+v", st)
	}
}

// TestWriteTimeoutDropsStalledClient checks that a client that stops
// reading is disconnected after the write timeout.
func TestWriteTimeoutDropsStalledClient(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	srv := newServerForTest(t, tr.r, Options{WriteTimeout: 50 * time.Millisecond})
	stalled, err := smallReadBuffer(context.Background(), "tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.Write(AppendFrame(nil, FrameHello, []byte(`{"protocol":1}`)))
	stalled.Write(AppendFrame(nil, FrameQuery, []byte(`{"after":0,"follow":true}`)))
	waitFor(t, "the follow", func() bool { return srv.Stats().FollowersActive == 1 })
	for srv.Stats().ConnsOpen != 0 {
		tr.write(1000, 100)
	}
	if st := srv.Stats(); st.Requests[KindFollow].Failed != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNoGoroutineLeak shuts down a server with connections in every state
// and checks that every goroutine it started has ended.
func TestNoGoroutineLeak(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	before := runtime.NumGoroutine()

	srv := newServerForTest(t, tr.r, Options{})
	follower := dialForTest(t, srv.addr, DialOptions{})
	idle := dialForTest(t, srv.addr, DialOptions{})
	query(t, idle, Request{})
	handshaking := dialRaw(t, srv.addr)
	col := newCollector(t)
	done := make(chan error, 1)
	var end End
	go func() {
		var err error
		end, err = follower.Query(context.Background(), Request{Follow: true}, col.handler())
		done <- err
	}()
	waitFor(t, "the follow", func() bool { return srv.Stats().FollowersActive == 1 && srv.Stats().ConnsOpen == 3 })

	shut := make(chan struct{})
	go func() {
		srv.shutdown(t)
		close(shut)
	}()
	if err := <-done; err != nil || end.Reason != ReasonShutdown || end.Cursor != 100 {
		t.Fatalf("follow: %+v, %v", end, err)
	}
	handshaking.expectError(CodeShutdown)
	handshaking.nc.Close()
	follower.Close()
	idle.Close()
	<-shut
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
	if st := srv.Stats(); st.ConnsOpen != 0 || st.FollowersActive != 0 {
		t.Fatalf("stats after shutdown %+v", st)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestServeSeveralListeners(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	tr.write(5, 5)
	srv := newServerForTest(t, tr.r, Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	for _, addr := range []string{srv.addr, ln.Addr().String()} {
		c := dialForTest(t, addr, DialOptions{})
		if got, _ := query(t, c, Request{N: new(int64(2))}); !slices.Equal(got, []uint64{4, 5}) {
			t.Fatalf("%s: %v", addr, got)
		}
		c.Close()
	}
	srv.shutdown(t)
	if err := <-served; err != nil {
		t.Fatalf("second Serve: %v", err)
	}
}

func TestClientHandlerError(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(5000, 100)
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	boom := errors.New("boom")
	n := 0
	end, err := c.Query(context.Background(), Request{After: new(uint64(0)), Follow: true}, Handler{Record: func(r Record) error {
		if n++; n == 10 {
			return boom
		}
		return nil
	}})
	if !errors.Is(err, boom) || n != 10 || end.Reason == "" {
		t.Fatalf("end %+v, %v after %d records", end, err, n)
	}
	if got, _ := query(t, c, Request{N: new(int64(1))}); !slices.Equal(got, []uint64{5000}) {
		t.Fatalf("after a handler error: %v", got)
	}
}

// TestCancelBeforeStart sends C right behind its Q, before the server can
// have started the query, and a stray C between queries: the first must
// cancel the query, the second must not cancel the next one.
func TestCancelBeforeStart(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	tr.write(3, 3)
	srv := newServerForTest(t, tr.r, Options{})
	rc := dialRaw(t, srv.addr)
	rc.hello()
	for range 20 {
		frames := AppendFrame(nil, FrameQuery, []byte(`{"id":1,"n":0,"follow":true}`))
		rc.nc.Write(AppendFrame(frames, FrameCancel, nil))
		typ, body := rc.next()
		end, err := DecodeEnd(body)
		if typ != FrameEnd || err != nil || end != (End{ID: 1, Cursor: 3, Reason: ReasonCancelled}) {
			t.Fatalf("got %s %s", typ, body)
		}
	}
	rc.send(FrameCancel, "")
	rc.send(FrameQuery, `{"id":2,"n":1}`)
	if typ, _ := rc.next(); typ != FrameBatch {
		t.Fatalf("got %s", typ)
	}
	if typ, body := rc.next(); typ != FrameEnd || string(body) != `{"id":2,"cursor":3,"reason":"done"}` {
		t.Fatalf("got %s %s", typ, body)
	}
}

// TestLatestAll: an n larger than the ring holds, up to NoMaxN, returns
// every record it holds (or every one that matches), in many batches,
// with no error; the same as Run gives.
func TestLatestAll(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(30_000, 500)
	oldest, head := tr.held()
	if oldest == shmring.FirstSeq {
		t.Fatal("the ring has not wrapped")
	}
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	for _, n := range []int64{int64(head - oldest), 10_000_000, NoMaxN} {
		for _, f := range []Filter{{}, {Tag: "sshd"}} {
			batches := 0
			col := newCollector(t)
			h := col.handler()
			h.Flush = func() error { batches++; return nil }
			end, err := c.Query(context.Background(), Request{N: new(n), Filter: f}, h)
			if err != nil {
				t.Fatalf("n %d: %v", n, err)
			}
			got, _, _ := col.snapshot()
			keep := func(s uint64) bool { return f.Tag == "" || s%3 == 0 }
			if w := want(oldest, head, keep); !slices.Equal(got, w) || end.Cursor != head-1 {
				t.Fatalf("n %d, filter %+v: %d records ending %v, cursor %d; want the %d held", n, f, len(got), lastN(got, 1), end.Cursor, len(w))
			}
			if local, _ := runLocal(t, tr.r, Request{N: new(n), Filter: f}); !slices.Equal(local, got) {
				t.Fatalf("n %d: Run gave %d records, the server %d", n, len(local), len(got))
			}
			if batches < 2 {
				t.Errorf("n %d: %d records in %d batches, want them streamed", n, len(got), batches)
			}
		}
	}
}
