package litetrace

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// An export request holds one resource, its spans grouped by tracer
// (instrumentation scope) in the order the scopes first ended a span.

// ended is what is exported of a span: a copy taken under its lock.
type ended struct {
	name       string
	kind       trace.SpanKind
	sc, parent trace.SpanContext
	start, end time.Time
	attrs      []attribute.KeyValue
	status     int // OTLP's StatusCode: 0 unset, 1 ok, 2 error
	message    string
}

type scopeSpans struct {
	scope string
	spans []ended
}

func byScope(spans []*span) []scopeSpans {
	var out []scopeSpans
	index := map[string]int{}
	for _, s := range spans {
		i, ok := index[s.t.scope]
		if !ok {
			i = len(out)
			index[s.t.scope] = i
			out = append(out, scopeSpans{scope: s.t.scope})
		}
		out[i].spans = append(out[i].spans, s.ended())
	}
	return out
}

func (s *span) ended() ended {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := ended{
		name: s.name, kind: s.kind, sc: s.sc, parent: s.parent,
		start: s.start, end: s.end,
		attrs: append([]attribute.KeyValue(nil), s.attrs...),
	}
	switch s.status {
	case codes.Error:
		e.status, e.message = 2, s.desc
	case codes.Ok:
		e.status = 1
	}
	if len(s.errs) > 0 && e.message == "" {
		e.message = strings.Join(s.errs, "; ")
	}
	return e
}

// The OTLP JSON encoding (opentelemetry-proto, JSON mapping): ids in hex,
// times as decimal strings of Unix nanoseconds, enums as numbers.
type (
	jsonRequest struct {
		ResourceSpans []jsonResourceSpans `json:"resourceSpans"`
	}
	jsonResourceSpans struct {
		Resource   jsonResource     `json:"resource"`
		ScopeSpans []jsonScopeSpans `json:"scopeSpans"`
	}
	jsonResource struct {
		Attributes []jsonKV `json:"attributes"`
	}
	jsonScopeSpans struct {
		Scope struct {
			Name string `json:"name"`
		} `json:"scope"`
		Spans []jsonSpan `json:"spans"`
	}
	jsonSpan struct {
		TraceID      string     `json:"traceId"`
		SpanID       string     `json:"spanId"`
		ParentSpanID string     `json:"parentSpanId,omitempty"`
		Name         string     `json:"name"`
		Kind         int        `json:"kind"`
		Start        string     `json:"startTimeUnixNano"`
		End          string     `json:"endTimeUnixNano"`
		Attributes   []jsonKV   `json:"attributes,omitempty"`
		Status       jsonStatus `json:"status"`
	}
	jsonStatus struct {
		Code    int    `json:"code,omitempty"`
		Message string `json:"message,omitempty"`
	}
	jsonKV struct {
		Key   string         `json:"key"`
		Value map[string]any `json:"value"`
	}
)

func encodeJSON(resource []attribute.KeyValue, spans []*span) ([]byte, error) {
	rs := jsonResourceSpans{Resource: jsonResource{Attributes: jsonAttrs(resource)}}
	for _, ss := range byScope(spans) {
		js := jsonScopeSpans{}
		js.Scope.Name = ss.scope
		for _, e := range ss.spans {
			o := jsonSpan{
				TraceID:    e.sc.TraceID().String(),
				SpanID:     e.sc.SpanID().String(),
				Name:       e.name,
				Kind:       int(e.kind),
				Start:      strconv.FormatInt(e.start.UnixNano(), 10),
				End:        strconv.FormatInt(e.end.UnixNano(), 10),
				Attributes: jsonAttrs(e.attrs),
				Status:     jsonStatus{Code: e.status, Message: e.message},
			}
			if e.parent.IsValid() {
				o.ParentSpanID = e.parent.SpanID().String()
			}
			js.Spans = append(js.Spans, o)
		}
		rs.ScopeSpans = append(rs.ScopeSpans, js)
	}
	return json.Marshal(jsonRequest{ResourceSpans: []jsonResourceSpans{rs}})
}

func jsonAttrs(kvs []attribute.KeyValue) []jsonKV {
	var out []jsonKV
	for _, kv := range kvs {
		v := map[string]any{}
		switch kv.Value.Type() {
		case attribute.BOOL:
			v["boolValue"] = kv.Value.AsBool()
		case attribute.INT64:
			v["intValue"] = strconv.FormatInt(kv.Value.AsInt64(), 10)
		case attribute.FLOAT64:
			v["doubleValue"] = kv.Value.AsFloat64()
		default:
			v["stringValue"] = kv.Value.String()
		}
		out = append(out, jsonKV{Key: string(kv.Key), Value: v})
	}
	return out
}

// The OTLP protobuf encoding, written by hand to keep the protobuf
// runtime out of logctl. Field numbers are those of
// opentelemetry/proto/collector/trace/v1 and the messages it uses.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
)

func encodeProtobuf(resource []attribute.KeyValue, spans []*span) []byte {
	var res []byte // Resource
	for _, kv := range resource {
		res = pbBytes(res, 1, pbKV(kv)) // attributes
	}
	rs := pbBytes(nil, 1, res) // ResourceSpans.resource
	for _, ss := range byScope(spans) {
		scope := pbString(nil, 1, ss.scope) // InstrumentationScope.name
		b := pbBytes(nil, 1, scope)         // ScopeSpans.scope
		for _, e := range ss.spans {
			b = pbBytes(b, 2, pbSpan(e)) // ScopeSpans.spans
		}
		rs = pbBytes(rs, 2, b) // ResourceSpans.scope_spans
	}
	return pbBytes(nil, 1, rs) // ExportTraceServiceRequest.resource_spans
}

// pbSpan encodes a Span.
func pbSpan(e ended) []byte {
	tid, sid := e.sc.TraceID(), e.sc.SpanID()
	b := pbBytes(nil, 1, tid[:])
	b = pbBytes(b, 2, sid[:])
	if e.parent.IsValid() {
		psid := e.parent.SpanID()
		b = pbBytes(b, 4, psid[:])
	}
	b = pbString(b, 5, e.name)
	b = pbVarint(b, 6, uint64(e.kind))
	b = pbFixed64(b, 7, uint64(e.start.UnixNano()))
	b = pbFixed64(b, 8, uint64(e.end.UnixNano()))
	for _, kv := range e.attrs {
		b = pbBytes(b, 9, pbKV(kv))
	}
	status := pbString(nil, 2, e.message)
	status = pbVarint(status, 3, uint64(e.status))
	return pbBytes(b, 15, status)
}

// pbKV encodes a KeyValue.
func pbKV(kv attribute.KeyValue) []byte {
	var v []byte // AnyValue
	switch kv.Value.Type() {
	case attribute.BOOL:
		var x uint64
		if kv.Value.AsBool() {
			x = 1
		}
		v = pbVarint(v, 2, x)
	case attribute.INT64:
		v = pbVarint(v, 3, uint64(kv.Value.AsInt64()))
	case attribute.FLOAT64:
		v = pbFixed64(v, 4, math.Float64bits(kv.Value.AsFloat64()))
	default:
		v = pbString(v, 1, kv.Value.String())
	}
	return pbBytes(pbString(nil, 1, string(kv.Key)), 2, v)
}

func pbTag(b []byte, field, wire int) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wire))
}

// pbVarint appends a varint field, left out when zero as proto3 does.
func pbVarint(b []byte, field int, v uint64) []byte {
	if v == 0 {
		return b
	}
	return binary.AppendUvarint(pbTag(b, field, wireVarint), v)
}

func pbFixed64(b []byte, field int, v uint64) []byte {
	return binary.LittleEndian.AppendUint64(pbTag(b, field, wireFixed64), v)
}

// pbBytes appends a bytes field or an embedded message, present even when
// empty.
func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(pbTag(b, field, wireBytes), uint64(len(v)))
	return append(b, v...)
}

// pbString appends a string field, left out when empty as proto3 does.
func pbString(b []byte, field int, s string) []byte {
	if s == "" {
		return b
	}
	b = binary.AppendUvarint(pbTag(b, field, wireBytes), uint64(len(s)))
	return append(b, s...)
}
