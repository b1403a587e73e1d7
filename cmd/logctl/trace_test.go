package main

import (
	"strings"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
)

// TestTailTraceID finds the records of one trace, whichever way the trace
// id was carried, over TCP and with --ring alike.
func TestTailTraceID(t *testing.T) {
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{})
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	d.Send(t,
		`{"msg":"json upper","trace_id":"4BF92F3577B34DA6A3CE929D0E0E4736"}`,
		`{"msg":"other trace","trace_id":"00000000000000000000000000000001"}`,
		"<13>1 2026-11-24T22:31:11Z host app - - [otel@1 trace_id=\""+id+"\"] rfc5424 sd",
		"MESSAGE=journal field\nTRACE_ID="+id+"\n",
		"no trace at all",
	)
	want := "json upper\nrfc5424 sd\njournal field\n"
	for _, where := range [][]string{{"--addr", d.QueryAddr}, {"--ring", d.Ring}} {
		res := logctl(t, append([]string{"tail", "-o", "raw", "--trace-id", strings.ToUpper(id)}, where...)...)
		if res.code != 0 || res.stdout != want {
			t.Errorf("%v: exit %d, got %q, want %q (%s)", where, res.code, res.stdout, want, res.stderr)
		}
	}
	if res := logctl(t, "tail", "--addr", d.QueryAddr, "--trace-id", "xyz"); res.code != 2 || !strings.Contains(res.stderr, "filter.trace_id") {
		t.Errorf("bad trace id: exit %d, %q", res.code, res.stderr)
	}
}
