//go:build linux

package query

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"
)

// fakeServer accepts one connection, answers the hello, reads the query
// and then plays script, which writes whatever a misbehaving server would.
func fakeServer(t *testing.T, script func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		fr := NewFrameReader(nc, MaxClientFrame)
		if typ, _, err := fr.Next(); err != nil || typ != FrameHello {
			return
		}
		nc.Write(AppendFrame(nil, FrameWelcome, []byte(`{"protocol":1,"server":"fake","ring_id":"00","head":1,"oldest":1,"max_n":10}`)))
		if typ, _, err := fr.Next(); err != nil || typ != FrameQuery {
			return
		}
		script(nc)
		// Read until the client goes away.
		for {
			if _, _, err := fr.Next(); err != nil {
				return
			}
		}
	}()
	return ln.Addr().String()
}

func batchFrame(seqs ...uint64) []byte {
	var b batchWriter
	for _, s := range seqs {
		b.add(Record{Seq: s, Payload: []byte("x")})
	}
	return append([]byte(nil), b.frame()...)
}

// TestClientCancelTimeout: a server that ignores C leaves the client
// unusable after CancelTimeout, not hung.
func TestClientCancelTimeout(t *testing.T) {
	addr := fakeServer(t, func(nc net.Conn) { nc.Write(batchFrame(1)) })
	c := dialForTest(t, addr, DialOptions{CancelTimeout: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	_, err := c.Query(ctx, Request{Follow: true}, Handler{Record: func(Record) error {
		cancel()
		return nil
	}})
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Query: %v, want a timeout", err)
	}
	if _, err2 := c.Query(context.Background(), Request{}, Handler{}); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second Query: %v, want %v", err2, err)
	}
}

// TestClientChecksServer: records out of order are a protocol violation.
func TestClientChecksServer(t *testing.T) {
	for name, frames := range map[string][]byte{
		"replayed record": append(batchFrame(5, 6), batchFrame(6)...),
		"loss going back": append(batchFrame(5), AppendFrame(nil, FrameLost, AppendLost(nil, 1, 5))...),
		"end before data": append(batchFrame(5), AppendFrame(nil, FrameEnd, []byte(`{"cursor":4,"reason":"done"}`))...),
		"unknown frame":   AppendFrame(nil, 'Z', nil),
		"hello again":     AppendFrame(nil, FrameWelcome, []byte(`{}`)),
	} {
		t.Run(name, func(t *testing.T) {
			addr := fakeServer(t, func(nc net.Conn) { nc.Write(frames) })
			c := dialForTest(t, addr, DialOptions{})
			if _, err := c.Query(context.Background(), Request{}, Handler{}); !errors.Is(err, ErrProtocol) {
				t.Fatalf("Query: %v, want a protocol violation", err)
			}
		})
	}
}

// TestClientCloseDuringQuery: Close ends a Query blocked on a quiet server.
func TestClientCloseDuringQuery(t *testing.T) {
	addr := fakeServer(t, func(nc net.Conn) {})
	c := dialForTest(t, addr, DialOptions{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Query(context.Background(), Request{Follow: true}, Handler{})
		done <- err
	}()
	c.Close()
	if err := <-done; !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Query: %v, want ErrClientClosed", err)
	}
}
