//go:build linux

package query

import (
	"context"
	"net"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// serverSpanName names the server span of a query.
const serverSpanName = ServerName + " query"

// serverSpan is the span of one query on the server, from its Q frame to
// the frame that ends its response. Its zero value, which serveQuery uses
// when tracing is off or the span is not sampled, does nothing and costs
// nothing. It belongs to the connection's serve goroutine.
type serverSpan struct {
	span         trace.Span
	sent0, lost0 uint64 // the connection's counters when the query started
	end          End    // the E frame, once the response ended with one
	err          error  // the X frame (an *Error) or why the connection broke
}

// startQuerySpan starts the server span of req. Its parent is the client's
// span named by the request's traceparent or, failing that, by the
// hello's; without either it starts a new trace.
func (c *conn) startQuerySpan(req *Request) serverSpan {
	tracer := c.s.tracer
	if tracer == nil {
		return serverSpan{}
	}
	ctx := context.Background()
	sc, ok := parseTraceParent(req.TraceParent)
	if !ok {
		sc, ok = parseTraceParent(c.hello.TraceParent)
	}
	if ok {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	_, span := tracer.Start(ctx, serverSpanName, trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		span.End()
		return serverSpan{}
	}
	span.SetAttributes(c.peerAttrs()...)
	span.SetAttributes(requestAttrs(req)...)
	return serverSpan{span: span, sent0: c.recordsSent, lost0: c.recordsLost}
}

// peerAttrs describes the client: its address and the name its hello gave.
func (c *conn) peerAttrs() []attribute.KeyValue {
	var attrs []attribute.KeyValue
	if a, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
		attrs = append(attrs, semconv.ClientAddress(a.IP.String()), semconv.ClientPort(a.Port))
	}
	if c.hello.Client != "" {
		attrs = append(attrs, attrQueryClient.String(c.hello.Client))
	}
	return attrs
}

// answer records that the response is the X frame e, and returns e.
func (s *serverSpan) answer(e *Error) *Error {
	s.err = e
	return e
}

// broke records that the connection failed mid-response.
func (s *serverSpan) broke(err error) { s.err = err }

// done records that the response ended with the E frame end.
func (s *serverSpan) done(end End) { s.end = end }

// finish sets the counters and the outcome and ends the span; serveQuery
// defers it, so it runs once the response's last frame was written.
func (s *serverSpan) finish(c *conn) {
	if s.span == nil {
		return
	}
	s.span.SetAttributes(
		attrRecordsSent.Int64(int64(c.recordsSent-s.sent0)),
		attrRecordsLost.Int64(int64(c.recordsLost-s.lost0)),
	)
	if s.err == nil && c.werr != nil {
		s.err = c.werr // the last frame did not go out
	}
	endSpan(s.span, s.end, s.err)
}
