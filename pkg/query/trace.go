package query

import (
	"encoding/hex"
	"encoding/json"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// tracerName is the instrumentation scope of the spans this package
// starts (see "Tracing" in the package doc).
const tracerName = "github.com/collectord/collectord/pkg/query"

// The attributes of query spans, on the client and the server (the
// package doc lists them too). Counters and the outcome are set when the
// response ends.
const (
	attrQueryID         = attribute.Key("collectord.query.id")               // the request's id, when it has one
	attrQueryKind       = attribute.Key("collectord.query.kind")             // the request's Kind: "latest", "after" or "follow"
	attrQueryN          = attribute.Key("collectord.query.n")                // the request's n, when given
	attrQueryAfter      = attribute.Key("collectord.query.after")            // the request's after, when given
	attrQueryFilter     = attribute.Key("collectord.query.filter")           // the filter as JSON, when there is one (at most 512 bytes)
	attrQueryClient     = attribute.Key("collectord.query.client")           // server: the client program its hello named
	attrRecordsSent     = attribute.Key("collectord.query.records_sent")     // server: records sent in B frames
	attrRecordsReceived = attribute.Key("collectord.query.records_received") // client: records delivered to the Handler
	attrRecordsLost     = attribute.Key("collectord.query.records_lost")     // records reported lost in L frames
	attrEndReason       = attribute.Key("collectord.query.end_reason")       // the E frame's reason, when the response ended with one
	attrCursor          = attribute.Key("collectord.query.cursor")           // the E frame's cursor, when the response ended with one
	attrErrorCode       = attribute.Key("collectord.query.error_code")       // the X frame's code, when the response ended with one
)

// maxFilterAttr bounds the length of the attrQueryFilter value.
const maxFilterAttr = 512

// newTracer returns the tracer for tp, or nil when tp is nil or a noop
// provider: nil means no tracing and no tracing work at all.
func newTracer(tp trace.TracerProvider) trace.Tracer {
	switch tp.(type) {
	case nil, noop.TracerProvider, *noop.TracerProvider:
		return nil
	}
	return tp.Tracer(tracerName)
}

// requestAttrs returns the attributes that describe req.
func requestAttrs(req *Request) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 5)
	attrs = append(attrs, attrQueryKind.String(KindOf(req).String()))
	if req.ID != 0 {
		attrs = append(attrs, attrQueryID.Int64(int64(req.ID)))
	}
	if req.N != nil {
		attrs = append(attrs, attrQueryN.Int64(*req.N))
	}
	if req.After != nil {
		attrs = append(attrs, attrQueryAfter.Int64(int64(*req.After)))
	}
	if !req.Filter.IsZero() {
		attrs = append(attrs, attrQueryFilter.String(filterSummary(req.Filter)))
	}
	return attrs
}

// filterSummary returns f as JSON, cut to at most maxFilterAttr bytes. It
// takes a copy so that the request it describes stays on the stack when
// tracing is off.
func filterSummary(f Filter) string {
	b, err := json.Marshal(f)
	if err != nil {
		return err.Error()
	}
	if len(b) > maxFilterAttr {
		n := maxFilterAttr - len("…")
		for n > 0 && !utf8.RuneStart(b[n]) {
			n--
		}
		b = append(b[:n], "…"...)
	}
	return string(b)
}

// endSpan sets the outcome of a query on span and ends it. A response
// that ended with E is a success whatever its reason; any error is
// recorded, with the X frame's code when it is an *Error.
func endSpan(span trace.Span, end End, err error) {
	if end.Reason != "" {
		span.SetAttributes(attrEndReason.String(string(end.Reason)), attrCursor.Int64(int64(end.Cursor)))
	}
	if err != nil {
		if xe, ok := err.(*Error); ok {
			span.SetAttributes(attrErrorCode.String(string(xe.Code)))
		}
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// traceParent formats sc as a W3C traceparent header value (version 00):
// "00-{trace id}-{span id}-{flags}".
func traceParent(sc trace.SpanContext) string {
	var b [traceParentLen]byte
	tid, sid := sc.TraceID(), sc.SpanID()
	flags := [1]byte{byte(sc.TraceFlags() & (trace.FlagsSampled | trace.FlagsRandom))}
	b[0], b[1], b[2] = '0', '0', '-'
	hex.Encode(b[3:35], tid[:])
	b[35] = '-'
	hex.Encode(b[36:52], sid[:])
	b[52] = '-'
	hex.Encode(b[53:55], flags[:])
	return string(b[:])
}

// traceParentLen is the length of a version 00 traceparent.
const traceParentLen = 55

// parseTraceParent parses a W3C traceparent header value as the W3C Trace
// Context recommendation says (and as otel's propagation.TraceContext
// does, without the net/http it would link in): lowercase hex, version ff
// invalid, version 00 exactly four fields with no reserved flag set, a
// later version possibly with more fields after a '-'; trace id and span
// id not all zero. ok is false when s is empty or not valid.
func parseTraceParent(s string) (sc trace.SpanContext, ok bool) {
	if len(s) < traceParentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return trace.SpanContext{}, false
	}
	var version, flags [1]byte
	var cfg trace.SpanContextConfig
	if !decodeLowerHex(version[:], s[0:2]) || version[0] == 0xff ||
		!decodeLowerHex(cfg.TraceID[:], s[3:35]) || !decodeLowerHex(cfg.SpanID[:], s[36:52]) ||
		!decodeLowerHex(flags[:], s[53:55]) {
		return trace.SpanContext{}, false
	}
	if version[0] == 0 && (len(s) != traceParentLen || flags[0] > 3) {
		return trace.SpanContext{}, false
	}
	if len(s) > traceParentLen && s[traceParentLen] != '-' {
		return trace.SpanContext{}, false
	}
	cfg.TraceFlags = trace.TraceFlags(flags[0]) & (trace.FlagsSampled | trace.FlagsRandom)
	cfg.Remote = true
	sc = trace.NewSpanContext(cfg)
	return sc, sc.IsValid()
}

// decodeLowerHex decodes src, lowercase hex digits only, into dst, which
// is half as long.
func decodeLowerHex(dst []byte, src string) bool {
	for i := range len(src) {
		if c := src[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(src))
	return err == nil
}
