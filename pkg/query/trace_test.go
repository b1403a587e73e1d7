//go:build linux

package query

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// recorder is a tracer provider that keeps every span, as one process
// (the daemon, or logctl) would export them.
type recorder struct {
	*sdktrace.TracerProvider
	sr *tracetest.SpanRecorder
}

func newRecorder(t testing.TB) *recorder {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return &recorder{TracerProvider: tp, sr: sr}
}

// ended returns the ended spans named name.
func (r *recorder) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.sr.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// only returns the one ended span named name, failing if there is not
// exactly one.
func (r *recorder) only(t testing.TB, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := r.ended(name)
	if len(spans) != 1 {
		t.Fatalf("%d ended spans named %q, want 1 (all: %v)", len(spans), name, spanNames(r.sr.Ended()))
	}
	return spans[0]
}

// waitOnly waits for the server to end its span, which it does after
// writing the response's last frame, possibly after the client has read
// it and returned.
func (r *recorder) waitOnly(t testing.TB, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	waitFor(t, "span "+name+" to end", func() bool { return len(r.ended(name)) > 0 })
	return r.only(t, name)
}

func spanNames(spans []sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, s := range spans {
		names = append(names, s.Name())
	}
	return names
}

// checkAttrs checks that span has these attributes, with these values.
func checkAttrs(t testing.TB, span sdktrace.ReadOnlySpan, want ...attribute.KeyValue) {
	t.Helper()
	got := make(map[attribute.Key]attribute.Value)
	for _, kv := range span.Attributes() {
		got[kv.Key] = kv.Value
	}
	for _, kv := range want {
		if v, ok := got[kv.Key]; !ok || v != kv.Value {
			t.Errorf("span %q: %s = %q, want %q", span.Name(), kv.Key, v.String(), kv.Value.String())
		}
	}
}

// checkNoAttr checks that span lacks the attribute key.
func checkNoAttr(t testing.TB, span sdktrace.ReadOnlySpan, key attribute.Key) {
	t.Helper()
	for _, kv := range span.Attributes() {
		if kv.Key == key {
			t.Errorf("span %q has %s = %q", span.Name(), key, kv.Value.String())
		}
	}
}

// checkChild checks that child's parent is parent, in the same trace.
func checkChild(t testing.TB, child sdktrace.ReadOnlySpan, parent trace.SpanContext, remote bool) {
	t.Helper()
	p := child.Parent()
	if p.TraceID() != parent.TraceID() || p.SpanID() != parent.SpanID() || p.IsRemote() != remote {
		t.Errorf("span %q: parent %s/%s (remote %v), want %s/%s (remote %v)", child.Name(),
			p.TraceID(), p.SpanID(), p.IsRemote(), parent.TraceID(), parent.SpanID(), remote)
	}
	if child.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("span %q is in trace %s, want %s", child.Name(), child.SpanContext().TraceID(), parent.TraceID())
	}
}

// TestTraceQuery runs a query from a traced client to a traced server,
// each with its own provider as two processes would: the client span is a
// child of the caller's span, the server span a child of the client span,
// all in one trace.
func TestTraceQuery(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(60, 10)
	srvTrace, cliTrace := newRecorder(t), newRecorder(t)
	srv := newServerForTest(t, tr.r, Options{TracerProvider: srvTrace})
	c := dialForTest(t, srv.addr, DialOptions{Client: "logctl", TracerProvider: cliTrace})

	ctx, root := cliTrace.Tracer("test").Start(context.Background(), "logctl tail")
	seqs, end := queryUnder(t, ctx, c, Request{ID: 7, N: new(int64(5)), Filter: Filter{Tag: "sshd"}})
	root.End()
	if len(seqs) != 5 || end.Reason != ReasonDone {
		t.Fatalf("got %v %+v", seqs, end)
	}

	cs := cliTrace.only(t, "logctl query")
	if cs.SpanKind() != trace.SpanKindClient {
		t.Errorf("client span kind %v", cs.SpanKind())
	}
	checkChild(t, cs, root.SpanContext(), false)
	checkAttrs(t, cs,
		attrQueryKind.String("latest"), attrQueryID.Int64(7), attrQueryN.Int64(5),
		attrQueryFilter.String(`{"tag":"sshd"}`),
		attrRecordsReceived.Int64(5), attrRecordsLost.Int64(0),
		attrEndReason.String("done"), attrCursor.Int64(int64(end.Cursor)),
		attribute.String("server.address", "127.0.0.1"),
	)
	checkNoAttr(t, cs, attrQueryAfter)
	checkNoAttr(t, cs, attrErrorCode)
	if cs.Status().Code != codes.Unset {
		t.Errorf("client span status %+v", cs.Status())
	}

	ss := srvTrace.waitOnly(t, "collectord query")
	if ss.SpanKind() != trace.SpanKindServer {
		t.Errorf("server span kind %v", ss.SpanKind())
	}
	checkChild(t, ss, cs.SpanContext(), true)
	checkAttrs(t, ss,
		attrQueryKind.String("latest"), attrQueryID.Int64(7), attrQueryN.Int64(5),
		attrQueryFilter.String(`{"tag":"sshd"}`), attrQueryClient.String("logctl"),
		attrRecordsSent.Int64(5), attrRecordsLost.Int64(0),
		attrEndReason.String("done"), attrCursor.Int64(int64(end.Cursor)),
		attribute.String("client.address", "127.0.0.1"),
	)
	if ss.Status().Code != codes.Unset {
		t.Errorf("server span status %+v", ss.Status())
	}
	if !ss.EndTime().After(ss.StartTime()) {
		t.Errorf("server span from %v to %v", ss.StartTime(), ss.EndTime())
	}

	// The next query on the connection is a span of its own.
	queryUnder(t, ctx, c, Request{After: new(end.Cursor - 2)})
	if n := len(cliTrace.ended("logctl query")); n != 2 {
		t.Errorf("%d client spans after two queries", n)
	}
	waitFor(t, "the second server span", func() bool { return len(srvTrace.ended("collectord query")) == 2 })
	second := srvTrace.ended("collectord query")[1]
	checkAttrs(t, second, attrQueryKind.String("after"), attrQueryAfter.Int64(int64(end.Cursor-2)), attrRecordsSent.Int64(2))
	checkNoAttr(t, second, attrQueryFilter)
}

// TestTraceFollow checks that a follow's span stays open while it
// streams and ends, with its reason, when the follow ends.
func TestTraceFollow(t *testing.T) {
	for _, how := range []string{"cancel", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			tr := newRingForTest(t, 1<<20)
			tr.write(30, 10)
			srvTrace, cliTrace := newRecorder(t), newRecorder(t)
			srv := newServerForTest(t, tr.r, Options{TracerProvider: srvTrace})
			c := dialForTest(t, srv.addr, DialOptions{TracerProvider: cliTrace})
			col := newCollector(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				end End
				err error
			}
			done := make(chan result, 1)
			go func() {
				end, err := c.Query(ctx, Request{After: new(uint64(0)), Follow: true}, col.handler())
				done <- result{end, err}
			}()
			col.waitUntil(t, "the backlog", func(s []uint64, _ uint64, _ int) bool { return len(s) == 30 })
			tr.write(20, 5)
			col.waitUntil(t, "the followed records", func(s []uint64, _ uint64, _ int) bool { return len(s) == 50 })
			if n := len(srvTrace.ended("collectord query")) + len(cliTrace.ended("collectord-go query")); n != 0 {
				t.Fatalf("%d spans ended while the follow runs", n)
			}
			if n := len(srvTrace.sr.Started()); n != 1 {
				t.Fatalf("%d server spans started, want the follow's", n)
			}

			reason := ReasonCancelled
			shut := make(chan struct{})
			if how == "cancel" {
				cancel()
				close(shut)
			} else {
				reason = ReasonShutdown
				go func() {
					defer close(shut)
					srv.shutdown(t)
				}()
			}
			res := <-done
			c.Close() // the server lingers until the client closes
			<-shut
			if res.err != nil || res.end.Reason != reason {
				t.Fatalf("follow ended with %+v, %v; want %s", res.end, res.err, reason)
			}
			cs := cliTrace.only(t, "collectord-go query")
			checkAttrs(t, cs, attrQueryKind.String("follow"), attrRecordsReceived.Int64(50), attrEndReason.String(string(reason)))
			ss := srvTrace.waitOnly(t, "collectord query")
			checkChild(t, ss, cs.SpanContext(), true)
			checkAttrs(t, ss, attrQueryKind.String("follow"), attrQueryAfter.Int64(0),
				attrRecordsSent.Int64(50), attrRecordsLost.Int64(0),
				attrEndReason.String(string(reason)), attrCursor.Int64(50))
			for _, s := range []sdktrace.ReadOnlySpan{cs, ss} {
				if s.Status().Code != codes.Unset {
					t.Errorf("span %q: status %+v: ending a follow is not an error", s.Name(), s.Status())
				}
			}
		})
	}
}

// TestTraceLost checks that a query's span counts the records reported
// lost.
func TestTraceLost(t *testing.T) {
	tr := newRingForTest(t, 64<<10)
	tr.write(3000, 100) // laps the small ring
	oldest, head := tr.held()
	if oldest <= 1 {
		t.Fatalf("the ring was not lapped: oldest %d", oldest)
	}
	srvTrace, cliTrace := newRecorder(t), newRecorder(t)
	srv := newServerForTest(t, tr.r, Options{TracerProvider: srvTrace})
	c := dialForTest(t, srv.addr, DialOptions{TracerProvider: cliTrace})
	col := newCollector(t)
	if _, err := c.Query(context.Background(), Request{After: new(uint64(0))}, col.handler()); err != nil {
		t.Fatal(err)
	}
	seqs, lost, _ := col.snapshot()
	cs := cliTrace.only(t, "collectord-go query")
	checkAttrs(t, cs, attrRecordsReceived.Int64(int64(len(seqs))), attrRecordsLost.Int64(int64(lost)))
	ss := srvTrace.waitOnly(t, "collectord query")
	checkAttrs(t, ss, attrRecordsSent.Int64(int64(len(seqs))), attrRecordsLost.Int64(int64(lost)))
	if lost != oldest-1 || uint64(len(seqs)) != head-oldest {
		t.Errorf("%d records and %d lost, want %d and %d", len(seqs), lost, head-oldest, oldest-1)
	}
}

// TestTraceErrors checks that refused queries end their spans with an
// error status and the X frame's code, on both sides.
func TestTraceErrors(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(10, 10)
	srvTrace, cliTrace := newRecorder(t), newRecorder(t)
	srv := newServerForTest(t, tr.r, Options{TracerProvider: srvTrace})
	c := dialForTest(t, srv.addr, DialOptions{TracerProvider: cliTrace})
	for i, tc := range []struct {
		req  Request
		code Code
	}{
		{Request{Filter: Filter{Grep: "("}}, CodeBadRequest},
		{Request{N: new(int64(-1))}, CodeBadRequest},
	} {
		_, err := c.Query(context.Background(), tc.req, Handler{})
		var xe *Error
		if !errors.As(err, &xe) || xe.Code != tc.code {
			t.Fatalf("%+v: %v, want X %s", tc.req, err, tc.code)
		}
		cs := cliTrace.ended("collectord-go query")[i]
		waitFor(t, "the server span", func() bool { return len(srvTrace.ended("collectord query")) == i+1 })
		ss := srvTrace.ended("collectord query")[i]
		checkChild(t, ss, cs.SpanContext(), true)
		for _, s := range []sdktrace.ReadOnlySpan{cs, ss} {
			checkAttrs(t, s, attrErrorCode.String(string(tc.code)))
			checkNoAttr(t, s, attrEndReason)
			if st := s.Status(); st.Code != codes.Error || !strings.Contains(st.Description, string(tc.code)) {
				t.Errorf("span %q: status %+v, want an error naming %s", s.Name(), st, tc.code)
			}
			if ev := s.Events(); len(ev) != 1 || ev[0].Name != "exception" {
				t.Errorf("span %q: events %+v, want the recorded error", s.Name(), ev)
			}
		}
	}
	// The client span of a query on a closed client records that too.
	c.Close()
	if _, err := c.Query(context.Background(), Request{}, Handler{}); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("query after Close: %v", err)
	}
	cs := cliTrace.ended("collectord-go query")[2]
	if cs.Status().Code != codes.Error {
		t.Errorf("query after Close: span status %+v", cs.Status())
	}
}

// TestTraceParentSources checks where the server span's parent comes from
// when the client does not trace, or the caller supplies trace context
// by hand.
func TestTraceParentSources(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(10, 10)
	srvTrace, caller := newRecorder(t), newRecorder(t)
	srv := newServerForTest(t, tr.r, Options{TracerProvider: srvTrace})
	callerCtx, callerSpan := caller.Tracer("test").Start(context.Background(), "caller")
	defer callerSpan.End()
	handParent := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
		SpanID:     trace.SpanID{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: trace.FlagsSampled,
	})
	hand := traceParent(handParent)
	if hand != "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" {
		t.Fatalf("traceParent = %q", hand)
	}

	// serverParent runs one query and returns the parent of its server span.
	serverParent := func(t *testing.T, c *Client, ctx context.Context, req Request) trace.SpanContext {
		t.Helper()
		before := len(srvTrace.ended("collectord query"))
		if _, err := c.Query(ctx, req, Handler{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the server span", func() bool { return len(srvTrace.ended("collectord query")) == before+1 })
		return srvTrace.ended("collectord query")[before].Parent()
	}
	same := func(t *testing.T, got, want trace.SpanContext) {
		t.Helper()
		if got.TraceID() != want.TraceID() || got.SpanID() != want.SpanID() {
			t.Errorf("server span parent %s/%s, want %s/%s", got.TraceID(), got.SpanID(), want.TraceID(), want.SpanID())
		}
	}

	t.Run("untraced client forwards the context's span", func(t *testing.T) {
		c := dialForTest(t, srv.addr, DialOptions{})
		same(t, serverParent(t, c, callerCtx, Request{}), callerSpan.SpanContext())
	})
	t.Run("request traceparent", func(t *testing.T) {
		c := dialForTest(t, srv.addr, DialOptions{})
		same(t, serverParent(t, c, context.Background(), Request{TraceParent: hand}), handParent)
	})
	t.Run("hello traceparent", func(t *testing.T) {
		c := dialForTest(t, srv.addr, DialOptions{TraceParent: hand})
		same(t, serverParent(t, c, context.Background(), Request{}), handParent)
		// A request's own trace context wins over the hello's.
		same(t, serverParent(t, c, callerCtx, Request{}), callerSpan.SpanContext())
	})
	t.Run("hello from the dial context", func(t *testing.T) {
		c, err := Dial(callerCtx, srv.addr, DialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		same(t, serverParent(t, c, context.Background(), Request{}), callerSpan.SpanContext())
	})
	t.Run("traced client under a request traceparent", func(t *testing.T) {
		cliTrace := newRecorder(t)
		c := dialForTest(t, srv.addr, DialOptions{TracerProvider: cliTrace})
		p := serverParent(t, c, context.Background(), Request{TraceParent: hand})
		cs := cliTrace.only(t, "collectord-go query")
		checkChild(t, cs, handParent, true)
		same(t, p, cs.SpanContext())
	})
	t.Run("bad traceparent", func(t *testing.T) {
		c := dialForTest(t, srv.addr, DialOptions{})
		if p := serverParent(t, c, context.Background(), Request{TraceParent: "00-xyz-01"}); p.IsValid() {
			t.Errorf("server span has parent %s/%s, want a new trace", p.TraceID(), p.SpanID())
		}
	})
}

// TestTraceUnsampled checks that a client span the sampler drops still
// sends its trace context, whose flags keep the server from recording.
func TestTraceUnsampled(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	tr.write(10, 10)
	srvTrace := newRecorder(t)
	srv := newServerForTest(t, tr.r, Options{TracerProvider: srvTrace})
	sr := tracetest.NewSpanRecorder()
	cliTP := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.NeverSample()))
	defer cliTP.Shutdown(context.Background())
	c := dialForTest(t, srv.addr, DialOptions{TracerProvider: cliTP})
	query(t, c, Request{})
	// The server starts its span before it answers: by now it would have.
	if n := len(sr.Started()); n != 0 {
		t.Errorf("the client recorded %d spans", n)
	}
	if n := len(srvTrace.sr.Started()); n != 0 {
		t.Errorf("the server recorded %d spans under an unsampled parent", n)
	}
	// Without trace context, the server starts a trace of its own.
	query(t, dialForTest(t, srv.addr, DialOptions{}), Request{})
	if ss := srvTrace.waitOnly(t, "collectord query"); ss.Parent().IsValid() {
		t.Errorf("server span without trace context has parent %v", ss.Parent())
	}
}

// TestTraceOff checks that without a tracer provider (or with a noop one)
// nothing is recorded, the caller's span is forwarded, and tracing costs
// no allocation.
func TestTraceOff(t *testing.T) {
	for _, tp := range []trace.TracerProvider{nil, noop.NewTracerProvider(), new(noop.TracerProvider)} {
		if newTracer(tp) != nil {
			t.Errorf("newTracer(%T) is not nil: tracing would be on", tp)
		}
	}

	tr := newRingForTest(t, 1<<20)
	tr.write(10, 10)
	srv := newServerForTest(t, tr.r, Options{TracerProvider: noop.NewTracerProvider()})
	if srv.tracer != nil {
		t.Fatal("a noop provider turns server tracing on")
	}
	caller := newRecorder(t)
	ctx, span := caller.Tracer("test").Start(context.Background(), "caller")
	c := dialForTest(t, srv.addr, DialOptions{TracerProvider: noop.NewTracerProvider()})
	queryUnder(t, ctx, c, Request{})
	span.End()
	if names := spanNames(caller.sr.Ended()); len(names) != 1 {
		t.Errorf("spans %v, want only the caller's", names)
	}

	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	req, h := Request{N: new(int64(10))}, Handler{}
	bg := context.Background()
	if allocs := testing.AllocsPerRun(100, func() {
		r := req
		var end End
		s := c.startQuerySpan(bg, &r, &h)
		s.end(end, nil)
	}); allocs != 0 {
		t.Errorf("client tracing off: %v allocations per query", allocs)
	}
	sc := &conn{s: srv.Server}
	if allocs := testing.AllocsPerRun(100, func() {
		s := sc.startQuerySpan(&req)
		s.done(End{Reason: ReasonDone})
		s.finish(sc)
	}); allocs != 0 {
		t.Errorf("server tracing off: %v allocations per query", allocs)
	}
}

// TestTraceAllocationsPerRecord checks that tracing adds no work per
// record: with spans on at both ends, a query's allocations (client and
// server together) do not grow with the records it moves.
func TestTraceAllocationsPerRecord(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	tr := newRingForTest(t, 8<<20)
	tr.write(20000, 1000)
	for _, traced := range []bool{false, true} {
		var opts Options
		var dopts DialOptions
		if traced {
			opts.TracerProvider, dopts.TracerProvider = newRecorder(t), newRecorder(t)
		}
		srv := newServerForTest(t, tr.r, opts)
		c := dialForTest(t, srv.addr, dopts)
		allocs := func(n int64) float64 {
			return testing.AllocsPerRun(5, func() {
				if _, err := c.Query(context.Background(), Request{N: new(n)}, Handler{}); err != nil {
					t.Fatal(err)
				}
			})
		}
		allocs(10) // warm up buffers
		small, large := allocs(100), allocs(15000)
		t.Logf("traced %v: %v allocations for 100 records, %v for 15000", traced, small, large)
		if large > small+20 {
			t.Errorf("traced %v: %v allocations for 100 records, %v for 15000", traced, small, large)
		}
	}
}

func TestFilterSummary(t *testing.T) {
	f := Filter{Tag: "sshd", Priority: new(3)}
	if got, want := filterSummary(f), `{"priority":3,"tag":"sshd"}`; got != want {
		t.Errorf("filterSummary = %s, want %s", got, want)
	}
	long := Filter{Grep: strings.Repeat("é", 400)}
	got := filterSummary(long)
	if len(got) > maxFilterAttr || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
		t.Errorf("long filter: %d bytes, valid UTF-8 %v: %q", len(got), utf8.ValidString(got), got)
	}
}

func TestParseTraceParent(t *testing.T) {
	for _, s := range []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
		"garbage",
	} {
		if sc, ok := parseTraceParent(s); ok {
			t.Errorf("parseTraceParent(%q) = %v, want invalid", s, sc)
		}
	}
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	sc, ok := parseTraceParent(good)
	if !ok || sc.IsSampled() || !sc.IsRemote() || traceParent(sc) != good {
		t.Errorf("parseTraceParent(%q) = %v, %v", good, sc, ok)
	}
}

// queryUnder is query with a context, which carries the caller's span.
func queryUnder(t *testing.T, ctx context.Context, c *Client, req Request) ([]uint64, End) {
	t.Helper()
	col := newCollector(t)
	end, err := c.Query(ctx, req, col.handler())
	if err != nil {
		t.Fatalf("Query(%s): %v", marshalJSON(req), err)
	}
	seqs, lost, _ := col.snapshot()
	if lost != 0 {
		t.Fatalf("Query(%s): %d lost", marshalJSON(req), lost)
	}
	return seqs, end
}
