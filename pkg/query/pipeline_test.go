//go:build linux

package query

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"
)

// TestPipelinedQuery: with DialOptions.Pipeline the first query travels
// behind the hello; the real server answers both, Handler.Hello gets the
// reply before any record, and Hello returns it afterwards.
func TestPipelinedQuery(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	last := tr.write(100, 10)
	ts := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, ts.addr, DialOptions{Pipeline: true})
	if h := c.Hello(); h.Protocol != 0 {
		t.Fatalf("Hello before the first query = %+v, want the zero reply", h)
	}
	var events []string
	var hello HelloReply
	col := newCollector(t)
	h := col.handler()
	rec := h.Record
	h.Record = func(r Record) error {
		if len(events) == 0 || events[len(events)-1] != "record" {
			events = append(events, "record")
		}
		return rec(r)
	}
	h.Hello = func(r HelloReply) error {
		events = append(events, "hello")
		hello = r
		return nil
	}
	end, err := c.Query(context.Background(), Request{N: new(int64(10))}, h)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hello", "record"}; !slices.Equal(events, want) {
		t.Errorf("calls = %v, want %v", events, want)
	}
	if hello.Protocol != Version || hello.Head != last+1 {
		t.Errorf("Handler.Hello got %+v, want protocol %d, head %d", hello, Version, last+1)
	}
	if got := c.Hello(); got != hello {
		t.Errorf("Hello after the query = %+v, want %+v", got, hello)
	}
	seqs, _, _ := col.snapshot()
	if want := want(last-9, last+1, nil); !slices.Equal(seqs, want) {
		t.Errorf("records %v, want %v", seqs, want)
	}
	if end.Cursor != last {
		t.Errorf("cursor %d, want %d", end.Cursor, last)
	}
	// The connection goes on as any other: a second query.
	col2 := newCollector(t)
	if _, err := c.Query(context.Background(), Request{N: new(int64(1))}, col2.handler()); err != nil {
		t.Fatal(err)
	}
	if seqs, _, _ := col2.snapshot(); !slices.Equal(seqs, []uint64{last}) {
		t.Errorf("second query: records %v, want [%d]", seqs, last)
	}
}

// TestPipelinedQueryOneRoundTrip: the query is on the wire before the
// client has the hello reply. The server here answers nothing until it has
// read both frames; a client that waited for the reply would time out.
func TestPipelinedQueryOneRoundTrip(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []FrameType, 1)
	go func() {
		var got []FrameType
		defer func() { done <- got }()
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer nc.Close()
		fr := NewFrameReader(nc, MaxClientFrame)
		for range 2 {
			typ, _, err := fr.Next()
			if err != nil {
				return
			}
			got = append(got, typ)
		}
		nc.Write(AppendFrame(nil, FrameWelcome, []byte(`{"protocol":1,"server":"fake","ring_id":"00","head":8,"oldest":1}`)))
		nc.Write(batchFrame(7))
		nc.Write(AppendFrame(nil, FrameEnd, []byte(`{"cursor":7,"reason":"done"}`)))
		fr.Next() // until the client goes away
	}()
	c := dialForTest(t, ln.Addr().String(), DialOptions{Pipeline: true, Timeout: 5 * time.Second})
	var seqs []uint64
	h := Handler{Record: func(r Record) error {
		seqs = append(seqs, r.Seq)
		return nil
	}}
	if _, err := c.Query(context.Background(), Request{N: new(int64(1))}, h); err != nil {
		t.Fatalf("Query: %v", err)
	}
	c.Close()
	if got := <-done; !slices.Equal(got, []FrameType{FrameHello, FrameQuery}) {
		t.Errorf("server read %v before answering, want [H Q]", got)
	}
	if !slices.Equal(seqs, []uint64{7}) {
		t.Errorf("records %v, want [7]", seqs)
	}
}

// TestPipelinedQueryRefused: a refusal of the hello comes from the first
// Query, as the same error Dial would return, and the client is unusable.
func TestPipelinedQueryRefused(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(5, 5)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// Anonymous network clients are refused by default.
	ts := serveForTest(t, NewServer(tr.r, Options{}), ln)
	_, derr := Dial(context.Background(), ts.addr, DialOptions{})
	if !errors.Is(derr, ErrUnauthorized) {
		t.Fatalf("Dial without Pipeline: %v, want ErrUnauthorized", derr)
	}
	c := dialForTest(t, ts.addr, DialOptions{Pipeline: true})
	col := newCollector(t)
	_, err = c.Query(context.Background(), Request{N: new(int64(5))}, col.handler())
	if !errors.Is(err, ErrUnauthorized) || !IsRefused(err) || err.Error() != derr.Error() {
		t.Fatalf("Query: %v, want %v", err, derr)
	}
	if seqs, _, _ := col.snapshot(); len(seqs) != 0 {
		t.Errorf("refused client got records %v", seqs)
	}
	if _, err2 := c.Query(context.Background(), Request{}, Handler{}); err2 == nil || err2.Error() != err.Error() {
		t.Errorf("second Query: %v, want %v", err2, err)
	}
}
