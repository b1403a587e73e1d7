//go:build linux

package query

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/testcert"
	"github.com/collectord/collectord/pkg/shmring"
)

// serveLocalForTest serves srv on a UNIX socket in a temporary directory
// too; the testServer's addr is "unix:PATH".
func serveLocalForTest(t *testing.T, srv *Server) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "query.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ts := serveForTest(t, srv, ln)
	ts.addr = UnixPrefix + path
	return ts
}

// TestLocalSocket: one server on TCP and on a UNIX socket. Over the
// socket the kernel says the client is root, who reads every record; over
// TCP the same client proves nothing and is refused, with nothing but
// X unauthorized. A TLS server speaks plain on its local socket.
func TestLocalSocket(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	ca := testcert.NewCA(t, "collectord-test")
	server := ca.Server(t, "server")
	cfg, err := access.ServerTLS(server.CertFile, server.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(tr.r, Options{TLSConfig: cfg})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	network := serveForTest(t, srv, ln)
	local := serveLocalForTest(t, srv)

	c := dialForTest(t, local.addr, DialOptions{})
	if h := c.Hello(); h.Access != AccessAllName || h.UID != nil {
		t.Errorf("root over the local socket: access %q, uid %v; want all", h.Access, h.UID)
	}
	if got := latest(t, c, 10); got != 10 {
		t.Errorf("root over the local socket: %d records, want 10", got)
	}
	if _, err := Dial(context.Background(), local.addr, DialOptions{TLSConfig: clientTLS(t, ca, testcert.Pair{})}); err == nil || !strings.Contains(err.Error(), "TLS is for TCP") {
		t.Errorf("TLS to a local socket: err = %v, want a refusal to try", err)
	}

	_, err = Dial(context.Background(), network.addr, DialOptions{TLSConfig: clientTLS(t, ca, testcert.Pair{})})
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "local socket") {
		t.Errorf("anonymous TLS client: err = %v, want X unauthorized pointing to the local socket", err)
	}
	frames, err := refusedRaw(t, network.addr, clientTLS(t, ca, testcert.Pair{}), "")
	if len(frames) != 1 || frames[0] != FrameError || !errors.Is(err, io.EOF) {
		t.Errorf("anonymous TLS client at the frame level: %v, then %v; want X alone, then EOF", frames, err)
	}
	st := srv.Stats()
	if st.AuthFailuresAnonymous != 2 || st.RecordsSent != 10 {
		t.Errorf("stats: %d anonymous refusals, %d records sent; want 2 and 10", st.AuthFailuresAnonymous, st.RecordsSent)
	}
}

// TestAnonymousNetwork: over plain TCP a client that proves nothing is
// refused unless AnonymousAll; a token lets it in either way.
func TestAnonymousNetwork(t *testing.T) {
	const token = "0123456789abcdef-tok"
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	for _, anonymousAll := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ts := serveForTest(t, NewServer(tr.r, Options{AnonymousAll: anonymousAll}), ln)
		_, err = Dial(context.Background(), ts.addr, DialOptions{})
		if anonymousAll {
			if err != nil {
				t.Errorf("AnonymousAll: %v", err)
			}
			continue
		}
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("anonymous: err = %v, want ErrUnauthorized", err)
		}
		rc := dialRaw(t, ts.addr)
		rc.send(FrameHello, `{"protocol":1}`)
		rc.send(FrameQuery, `{"id":1,"n":10}`)
		rc.expectError(CodeUnauthorized)
		rc.expectClosed()
		if st := ts.Stats(); st.AuthFailuresAnonymous != 2 || st.RecordsSent != 0 {
			t.Errorf("stats %+v", st)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := serveForTest(t, NewServer(tr.r, Options{Tokens: []string{token}}), ln)
	if got := latest(t, dialForTest(t, ts.addr, DialOptions{Token: token}), 5); got != 5 {
		t.Errorf("with a token: %d records, want 5", got)
	}
}

// TestGrant: what each client may read, by its socket, credentials and
// token, and the server's options.
func TestGrant(t *testing.T) {
	const token = "0123456789abcdef-tok"
	tr := newRingForTest(t, shmring.MinSize)
	local := func(uid, gid uint32, groups ...uint32) *peerCred {
		return &peerCred{pid: 42, uid: uid, gid: gid, groups: groups}
	}
	for _, tc := range []struct {
		name  string
		opts  Options
		peer  *peerCred // nil: a network client
		token string
		want  string // Access.String(), or "unauthorized"
	}{
		{"root", Options{}, local(0, 0), "", "all"},
		{"a user", Options{}, local(1000, 1000), "", "own uid 1000"},
		{"a user in the root group", Options{}, local(1000, 0), "", "own uid 1000"},
		{"a reader uid", Options{ReaderUIDs: []uint32{7, 1000}}, local(1000, 1000), "", "all"},
		{"primary group a readers' group", Options{ReaderGroups: []uint32{4}}, local(1000, 4), "", "all"},
		{"supplementary group a readers' group", Options{ReaderGroups: []uint32{9, 4}}, local(1000, 1000, 24, 4), "", "all"},
		{"other groups", Options{ReaderGroups: []uint32{4}}, local(1000, 1000, 24, 27), "", "own uid 1000"},
		{"local without a token the server has", Options{Tokens: []string{token}}, local(1000, 1000), "", "own uid 1000"},
		{"local with the token", Options{Tokens: []string{token}}, local(1000, 1000), token, "all"},
		{"local with a wrong token", Options{Tokens: []string{token}}, local(0, 0), token + "x", "unauthorized"},
		{"local with a token the server has not", Options{}, local(1000, 1000), token, "own uid 1000"},
		{"anonymous network", Options{}, nil, "", "unauthorized"},
		{"network, token the server has not", Options{}, nil, token, "unauthorized"},
		{"anonymous network, AnonymousAll", Options{AnonymousAll: true}, nil, "", "all"},
		{"network without the token", Options{Tokens: []string{token}, AnonymousAll: true}, nil, "", "unauthorized"},
		{"network with the token", Options{Tokens: []string{token}}, nil, token, "all"},
	} {
		s := NewServer(tr.r, tc.opts)
		c := &conn{s: s, log: s.log, peer: tc.peer}
		a, xe := c.grant(&Hello{Protocol: Version, Token: tc.token})
		got := a.String()
		if xe != nil {
			got = string(xe.Code)
		}
		if got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestHandshakeBudget: network connections that never finish their hello
// (some silent, some with two bytes of a frame header) take at most
// MaxHandshakes places; each one over takes the place of the oldest, so a
// client that says hello is served however many there are.
func TestHandshakeBudget(t *testing.T) {
	const budget, stalled = 8, 40
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	srv := newServerForTest(t, tr.r, Options{MaxHandshakes: budget})
	header := binary.LittleEndian.AppendUint32(nil, 100)
	conns := make([]net.Conn, stalled)
	for i := range conns {
		conns[i] = dialRaw(t, srv.addr).nc
		if i%2 == 1 {
			if _, err := conns[i].Write(header[:2]); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "the oldest dropped", func() bool { return srv.Stats().HandshakesDropped == stalled-budget })
	for i, nc := range conns[:stalled-budget] {
		if n, err := nc.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Fatalf("stalled connection %d of %d: read %d bytes, %v; want it closed by the server", i, stalled, n, err)
		}
	}
	for range 3 {
		c := dialForTest(t, srv.addr, DialOptions{})
		if got := latest(t, c, 5); got != 5 {
			t.Errorf("a client among the stalled connections: %d records, want 5", got)
		}
		c.Close()
	}
	// The first client took the oldest one's place; once it was past its
	// hello, that place was free for the next.
	st := srv.Stats()
	if st.Handshakes != budget-1 || st.HandshakesDropped != stalled-budget+1 || st.ConnsRejected != 0 {
		t.Errorf("stats: %d in their handshake, %d dropped, %d busy; want %d, %d, 0", st.Handshakes, st.HandshakesDropped, st.ConnsRejected, budget-1, stalled-budget+1)
	}
	if n, err := conns[stalled-budget].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("the oldest stalled connection when the client came: read %d bytes, %v; want it closed", n, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestPerUIDLimit: one user holds at most MaxConnsPerUID connections on a
// local socket, in their hello or past it; the next is told busy, and
// other clients are served meanwhile.
func TestPerUIDLimit(t *testing.T) {
	const limit = 3
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	srv := newServerForTest(t, tr.r, Options{MaxConnsPerUID: limit})
	local := serveLocalForTest(t, srv.Server)
	held := []*rawConn{dialRaw(t, local.addr), dialRaw(t, local.addr), dialRaw(t, local.addr)}
	held[0].hello()
	held[1].hello()
	waitFor(t, "the connections accepted", func() bool { return srv.Stats().ConnsOpen == limit })
	_, err := Dial(context.Background(), local.addr, DialOptions{})
	var xe *Error
	if !errors.As(err, &xe) || xe.Code != CodeBusy || !strings.Contains(xe.Message, "uid 0") || xe.RetryAfter != DefaultRetryAfter {
		t.Fatalf("one connection over the limit: %v, want X busy naming uid 0", err)
	}
	network := dialForTest(t, srv.addr, DialOptions{})
	if got := latest(t, network, 5); got != 5 {
		t.Errorf("a network client meanwhile: %d records, want 5", got)
	}
	network.Close()
	if st := srv.Stats(); st.ConnsRejectedUID != 1 || st.ConnsRejected != 0 {
		t.Errorf("stats: %d refused for their uid, %d busy; want 1 and 0", st.ConnsRejectedUID, st.ConnsRejected)
	}
	held[2].nc.Close()
	waitFor(t, "the place freed", func() bool { return srv.Stats().ConnsOpen == limit-1 })
	if got := latest(t, dialForTest(t, local.addr, DialOptions{}), 5); got != 5 {
		t.Errorf("after one left: %d records, want 5", got)
	}
}
