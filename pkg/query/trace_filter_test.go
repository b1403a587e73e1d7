//go:build linux

package query

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/collectord/collectord/pkg/ingest"
	"github.com/collectord/collectord/pkg/record"
)

const (
	testTraceID  = "4bf92f3577b34da6a3ce929d0e0e4736"
	otherTraceID = "0af7651916cd43dd8448eb211c80319c"
)

// traceDatagrams are datagrams as programs send them, parsed by the real
// ingest parser; match says whether they carry testTraceID.
var traceDatagrams = []struct {
	name  string
	data  string
	match bool
}{
	{"json trace_id", `{"msg":"json","trace_id":"` + testTraceID + `"}`, true},
	{"json traceId upper-case value", `{"msg":"json","traceId":"` + strings.ToUpper(testTraceID) + `"}`, true},
	{"json traceid", `{"msg":"json","traceid":"` + testTraceID + `"}`, true},
	{"json TraceId", `{"msg":"json","TraceId":"` + testTraceID + `"}`, true},
	{"json otel.trace_id", `{"msg":"json","otel.trace_id":"` + testTraceID + `"}`, true},
	{"json trace.id", `{"msg":"json","trace.id":"` + testTraceID + `"}`, true},
	{"json other trace", `{"msg":"json","trace_id":"` + otherTraceID + `"}`, false},
	{"json span_id", `{"msg":"json","span_id":"` + testTraceID + `"}`, false},
	{"json trace_ids", `{"msg":"json","trace_ids":"` + testTraceID + `"}`, false},
	{"json parent_trace_id", `{"msg":"json","parent_trace_id":"` + testTraceID + `"}`, false},
	{"json in message only", `{"msg":"trace ` + testTraceID + `"}`, false},
	{"json trace id with prefix", `{"msg":"json","trace_id":"x` + testTraceID + `"}`, false},
	{"rfc5424 sd trace_id", `<14>1 2025-11-25T10:00:00Z host app 42 - [otel@32473 trace_id="` + testTraceID + `" span_id="00f067aa0ba902b7"] rfc5424`, true},
	{"rfc5424 sd traceId", `<14>1 2025-11-25T10:00:00Z host app 42 - [trace@1 traceId="` + testTraceID + `"] rfc5424`, true},
	{"rfc5424 sd other", `<14>1 2025-11-25T10:00:00Z host app 42 - [otel@32473 trace_id="` + otherTraceID + `"] rfc5424`, false},
	{"rfc5424 no sd", `<14>1 2025-11-25T10:00:00Z host app 42 - - ` + testTraceID, false},
	{"journald TRACE_ID", "MESSAGE=journal\nTRACE_ID=" + testTraceID + "\n", true},
	{"journald other", "MESSAGE=journal\nTRACE_ID=" + otherTraceID + "\n", false},
	{"rfc3164", "<13>Nov 25 10:00:00 host app[42]: trace_id=" + testTraceID, false},
}

func TestFilterTraceID(t *testing.T) {
	f := Filter{TraceID: testTraceID}
	if err := f.Compile(); err != nil {
		t.Fatal(err)
	}
	if f.IsZero() {
		t.Error("a filter with a trace id IsZero")
	}
	var p ingest.Parser
	for _, tc := range traceDatagrams {
		var e record.Entry
		p.Parse([]byte(tc.data), &e)
		if e.Flags&record.FlagMalformed != 0 {
			t.Fatalf("%s: the datagram does not parse: %q", tc.name, tc.data)
		}
		if got := f.Match(0, &e); got != tc.match {
			t.Errorf("%s: Match = %v, want %v (fields %s)", tc.name, got, tc.match, fieldsString(&e))
		}
	}
}

func fieldsString(e *record.Entry) string {
	var b strings.Builder
	for _, f := range e.Fields {
		b.WriteString(string(f.Key) + "=" + string(f.Value) + " ")
	}
	return b.String()
}

func TestFilterTraceIDCompileErrors(t *testing.T) {
	for _, id := range []string{
		"4bf92f3577b34da6a3ce929d0e0e473",   // 31 digits
		"4bf92f3577b34da6a3ce929d0e0e47360", // 33
		strings.ToUpper(testTraceID),        // the protocol spells it in lower case
		"4bf92f3577b34da6a3ce929d0e0e473g",
		"00000000000000000000000000000000",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		f := Filter{TraceID: id}
		err := f.Compile()
		var re *RequestError
		if !errors.As(err, &re) || re.Field != "filter.trace_id" {
			t.Errorf("trace id %q: Compile = %v, want a *RequestError for filter.trace_id", id, err)
		}
	}
}

func TestDecodeRequestTraceID(t *testing.T) {
	q, err := DecodeRequest([]byte(`{"filter":{"trace_id":"` + testTraceID + `","tag":"app"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if q.Filter.TraceID != testTraceID {
		t.Errorf("TraceID = %q, want %q", q.Filter.TraceID, testTraceID)
	}
	_, err = DecodeRequest([]byte(`{"id":3,"filter":{"trace_id":"xyz"}}`))
	var re *RequestError
	if !errors.As(err, &re) || re.Field != "filter.trace_id" {
		t.Errorf("bad trace id: %v, want a *RequestError for filter.trace_id", err)
	}
}

func TestFilterTraceIDDoesNotAllocate(t *testing.T) {
	f := Filter{TraceID: testTraceID}
	if err := f.Compile(); err != nil {
		t.Fatal(err)
	}
	var p ingest.Parser
	entries := make([]record.Entry, len(traceDatagrams))
	for i, tc := range traceDatagrams {
		var e record.Entry
		p.Parse([]byte(tc.data), &e)
		// Parse's slices alias its scratch buffer: keep a copy.
		if err := record.Decode(record.AppendEncode(nil, &e), &entries[i]); err != nil {
			t.Fatal(err)
		}
	}
	matched := 0
	allocs := testing.AllocsPerRun(20, func() {
		for i := range entries {
			if f.Match(0, &entries[i]) {
				matched++
			}
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("Match with a trace id allocates: %v allocations per %d calls", allocs, len(entries))
	}
	if matched == 0 {
		t.Error("nothing matched: the test does not exercise the comparison")
	}
}

// TestQueryTraceID stores the datagrams in a ring and asks a real server
// over TCP, and Run directly, for the records of one trace.
func TestQueryTraceID(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	var p ingest.Parser
	var e record.Entry
	var want []uint64
	for range 3 { // several rounds, so that "latest n" has to skip some
		for _, tc := range traceDatagrams {
			p.Parse([]byte(tc.data), &e)
			seq, err := tr.w.Add(baseTime, record.AppendEncode(nil, &e))
			if err != nil {
				t.Fatal(err)
			}
			if tc.match {
				want = append(want, seq)
			}
		}
	}
	tr.w.Publish()

	gather := func() (*[]uint64, Handler) {
		var got []uint64
		return &got, Handler{Record: func(r Record) error {
			var e record.Entry
			if err := record.Decode(r.Payload, &e); err != nil {
				return err
			}
			if !hasTraceID(&e, testTraceID) {
				return errors.New("record without the trace id: " + fieldsString(&e))
			}
			got = append(got, r.Seq)
			return nil
		}}
	}
	f := Filter{TraceID: testTraceID}
	srv := newServerForTest(t, tr.r, Options{})
	c := dialForTest(t, srv.addr, DialOptions{})
	for _, tc := range []struct {
		name string
		req  Request
		want []uint64
	}{
		{"all", Request{After: new(uint64(0)), Filter: f}, want},
		{"latest 4", Request{N: new(int64(4)), Filter: f}, want[len(want)-4:]},
	} {
		got, h := gather()
		if _, err := c.Query(context.Background(), tc.req, h); err != nil {
			t.Fatalf("%s over TCP: %v", tc.name, err)
		}
		if !slices.Equal(*got, tc.want) {
			t.Errorf("%s over TCP: got %v, want %v", tc.name, *got, tc.want)
		}
		got, h = gather()
		if _, err := Run(context.Background(), tr.r, tc.req, h); err != nil {
			t.Fatalf("%s with Run: %v", tc.name, err)
		}
		if !slices.Equal(*got, tc.want) {
			t.Errorf("%s with Run: got %v, want %v", tc.name, *got, tc.want)
		}
	}
}
