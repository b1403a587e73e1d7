//go:build linux

package query

import (
	"encoding/binary"
	"log/slog"
	"net"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestFirstMessageQueued: a connection counts as ready only once its
// client's whole first message (hello frame, or TLS record) is queued.
func TestFirstMessageQueued(t *testing.T) {
	hello := AppendFrame(nil, FrameHello, []byte(`{"protocol":1}`))
	tlsRecord := append([]byte{22, 3, 1, 0, 4}, 1, 2, 3, 4) // handshake record, 4-byte body
	for _, tc := range []struct {
		name  string
		tls   bool
		sent  []byte
		ready bool
	}{
		{"nothing", false, nil, false},
		{"two bytes of a header", false, hello[:2], false},
		{"a header and part of the body", false, hello[:len(hello)-1], false},
		{"a whole hello", false, hello, true},
		{"a hello and more", false, append(append([]byte{}, hello...), 'x'), true},
		{"a header announcing more than was sent", false, binary.LittleEndian.AppendUint32(nil, 1000)[:4], false},
		{"part of a TLS record", true, tlsRecord[:7], false},
		{"a whole TLS record", true, tlsRecord, true},
	} {
		client, server := tcpPair(t)
		if len(tc.sent) > 0 {
			if _, err := client.Write(tc.sent); err != nil {
				t.Fatal(err)
			}
		}
		var got bool
		for deadline := time.Now().Add(time.Second); ; {
			// Loopback delivers at once; give it a moment all the same.
			if got = firstMessageQueued(server, tc.tls); got == tc.ready || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		if got != tc.ready {
			t.Errorf("%s: firstMessageQueued = %v, want %v", tc.name, got, tc.ready)
		}
	}
}

// TestDropSparesQueuedHello: with the handshake budget full, the
// connection dropped to admit a new one is the oldest whose client has
// not queued its whole first message; only when every one has is it the
// oldest of all.
func TestDropSparesQueuedHello(t *testing.T) {
	s := NewServer(nil, Options{})
	conns := make([]*conn, 4)
	for i, ready := range []bool{true, true, false, false} {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		c := newConn(s, a, slog.New(slog.DiscardHandler))
		c.ready = ready
		c.hs = s.handshakes.PushBack(c)
		conns[i] = c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, want := range []int{2, 3, 0, 1} {
		if got := s.dropHandshakeLocked(); got != conns[want] || !got.dropped || got.hs != nil {
			t.Fatalf("dropped %p, want connection %d (%p), marked dropped", got, want, conns[want])
		}
	}
}
