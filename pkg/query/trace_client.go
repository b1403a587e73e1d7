package query

import (
	"context"
	"net"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// clientTracing is a Client's tracing state, set once by Dial. Its zero
// value means tracing is off.
type clientTracing struct {
	tracer    trace.Tracer         // nil: tracing off
	spanName  string               // "<client> query"
	peerAttrs []attribute.KeyValue // server.address and server.port
}

// initTracing sets up tracing for a client dialled to addr, and makes the
// hello carry the span in ctx when DialOptions.TraceParent is empty.
func (c *Client) initTracing(ctx context.Context, addr string) {
	if c.opts.TraceParent == "" {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			c.opts.TraceParent = traceParent(sc)
		}
	}
	c.tr.tracer = newTracer(c.opts.TracerProvider)
	if c.tr.tracer == nil {
		return
	}
	c.tr.spanName = c.opts.Client + " query"
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		c.tr.peerAttrs = append(c.tr.peerAttrs, semconv.ServerAddress(path))
	} else if host, port, err := net.SplitHostPort(addr); err == nil {
		c.tr.peerAttrs = append(c.tr.peerAttrs, semconv.ServerAddress(host))
		if p, err := strconv.Atoi(port); err == nil {
			c.tr.peerAttrs = append(c.tr.peerAttrs, semconv.ServerPort(p))
		}
	}
}

// clientSpan is the span of one Client.Query. Its zero value, which Query
// uses when tracing is off or the span is not sampled, does nothing.
type clientSpan struct {
	span trace.Span
	n    *clientCounts
}

// clientCounts counts what a traced Query delivered to its Handler.
type clientCounts struct{ records, lost uint64 }

// startQuerySpan starts the client span of a query and puts its W3C trace
// context in req.TraceParent, so that the server's span becomes its child.
// The span's parent is the span in ctx or, when ctx has none, the
// traceparent the caller put in req.
//
// With tracing off it only forwards the span in ctx, if there is one and
// req.TraceParent is empty, so that the server's span still joins the
// caller's trace; it does not allocate unless it does that.
//
// When the span records, h is wrapped to count records and losses.
func (c *Client) startQuerySpan(ctx context.Context, req *Request, h *Handler) clientSpan {
	parent := trace.SpanContextFromContext(ctx)
	if c.tr.tracer == nil {
		if req.TraceParent == "" && parent.IsValid() {
			req.TraceParent = traceParent(parent)
		}
		return clientSpan{}
	}
	if !parent.IsValid() {
		if sc, ok := parseTraceParent(req.TraceParent); ok {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
		}
	}
	_, span := c.tr.tracer.Start(ctx, c.tr.spanName, trace.WithSpanKind(trace.SpanKindClient))
	// Sent even when the span is not sampled: the flags tell the server.
	req.TraceParent = traceParent(span.SpanContext())
	if !span.IsRecording() {
		span.End()
		return clientSpan{}
	}
	span.SetAttributes(c.tr.peerAttrs...)
	span.SetAttributes(requestAttrs(req)...)
	n := new(clientCounts)
	record, lost := h.Record, h.Lost
	h.Record = func(r Record) error {
		n.records++
		if record == nil {
			return nil
		}
		return record(r)
	}
	h.Lost = func(l, next uint64) error {
		n.lost += l
		if lost == nil {
			return nil
		}
		return lost(l, next)
	}
	return clientSpan{span: span, n: n}
}

// end records how the query ended, as Query returns it, and ends the span.
func (s *clientSpan) end(end End, err error) {
	if s.span == nil {
		return
	}
	s.span.SetAttributes(
		attrRecordsReceived.Int64(int64(s.n.records)),
		attrRecordsLost.Int64(int64(s.n.lost)),
	)
	endSpan(s.span, end, err)
}
