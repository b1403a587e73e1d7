package query

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/pkg/record"
)

// FuzzTraceIDMatch checks the trace id filter against a plain statement of
// its rule, for any field a record may carry.
func FuzzTraceIDMatch(f *testing.F) {
	f.Add([]byte("trace_id"), []byte("4bf92f3577b34da6a3ce929d0e0e4736"), "4bf92f3577b34da6a3ce929d0e0e4736")
	f.Add([]byte("otel@32473.TraceId"), []byte("4BF92F3577B34DA6A3CE929D0E0E4736"), "4bf92f3577b34da6a3ce929d0e0e4736")
	f.Add([]byte("TRACE_ID"), []byte("4bf92f3577b34da6a3ce929d0e0e473G"), "4bf92f3577b34da6a3ce929d0e0e4736")
	f.Add([]byte("span_id"), []byte("4bf92f3577b34da6a3ce929d0e0e4736"), "4bf92f3577b34da6a3ce929d0e0e4736")
	f.Add([]byte("trace.id"), []byte("4bf92f3577b34da6a3ce929d0e0e4736"), "4BF92F3577B34DA6A3CE929D0E0E4736")
	asciiLower := func(s string) string {
		return strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, s)
	}
	f.Fuzz(func(t *testing.T, key, value []byte, id string) {
		filter := Filter{TraceID: id}
		if id == "" || filter.Compile() != nil {
			return // no condition, or not a trace id
		}
		k := asciiLower(string(key))
		wantKey := k == "trace_id" || k == "traceid" || k == "trace.id" ||
			strings.HasSuffix(k, ".trace_id") || strings.HasSuffix(k, ".traceid")
		want := wantKey && asciiLower(string(value)) == id
		e := record.Entry{Fields: []record.Field{{Key: []byte("x"), Value: []byte(id)}, {Key: key, Value: value}}}
		if got := filter.Match(0, &e); got != want {
			t.Fatalf("field %q=%q, trace id %s: Match = %v, want %v", key, value, id, got, want)
		}
	})
}

// FuzzParseTraceParent feeds the server's traceparent parser what a client
// may send, and checks it against otel's own W3C propagator: both accept
// the same values and read the same trace context from them, which
// formats back to a value read the same way.
func FuzzParseTraceParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-future")
	f.Add("00-00000000000000000000000000000000-00f067aa0ba902b7-01")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7")
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		sc, ok := parseTraceParent(s)
		ref := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{"traceparent": s}))
		if len(s) == traceParentLen+1 && strings.HasPrefix(s, "00-") && s[traceParentLen] == '-' {
			// otel reads a version 00 value with a trailing '-'; the
			// W3C says version 00 is exactly 55 characters.
			ref = trace.SpanContext{}
		}
		if ok != ref.IsValid() || ok && !sc.Equal(ref) {
			t.Fatalf("%q: parsed to %v (%v), otel's propagator reads %v (%v)", s, sc, ok, ref, ref.IsValid())
		}
		if !ok {
			return
		}
		tp := traceParent(sc)
		again, ok := parseTraceParent(tp)
		if !ok || !again.Equal(sc) {
			t.Fatalf("%q parsed to %v, formatted as %q, which parses to %v (%v)", s, sc, tp, again, ok)
		}
	})
}
