package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// collectedSpan is what the fake collector keeps of a span.
type collectedSpan struct{ name, traceID, spanID, parentID string }

// fakeCollector accepts OTLP/HTTP exports in JSON (logctl) and protobuf
// (the daemon's SDK exporter).
type fakeCollector struct {
	mu    sync.Mutex
	spans []collectedSpan
}

func (c *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.Header.Get("Content-Type") {
	case "application/json":
		var req struct {
			ResourceSpans []struct {
				ScopeSpans []struct {
					Spans []struct{ Name, TraceID, SpanID, ParentSpanID string }
				}
			}
		}
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans = append(c.spans, collectedSpan{s.Name, s.TraceID, s.SpanID, s.ParentSpanID})
				}
			}
		}
	case "application/x-protobuf":
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					c.spans = append(c.spans, collectedSpan{s.Name, hexOf(s.TraceId), hexOf(s.SpanId), hexOf(s.ParentSpanId)})
				}
			}
		}
	default:
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	}
	w.WriteHeader(200)
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func (c *fakeCollector) find(name string) (collectedSpan, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.name == name {
			return s, true
		}
	}
	return collectedSpan{}, false
}

// tailTraced starts a fake collector, and a daemon with
// OTEL_EXPORTER_OTLP_ENDPOINT set to it and env in its environment; sends
// msg; and runs `logctl tail -n 1` against the daemon with the same
// environment, which must print msg. It returns logctl's stderr.
func tailTraced(t *testing.T, msg string, env ...string) (*fakeCollector, *proctest.Daemon, string) {
	t.Helper()
	col := &fakeCollector{}
	srv := httptest.NewServer(col)
	t.Cleanup(srv.Close)
	env = append([]string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + srv.URL}, env...)
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{Env: env})
	d.Send(t, msg)

	cmd := exec.Command(proctest.Logctl(t), "tail", "-n", "1", "-o", "raw", "--addr", d.QueryAddr)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || out.String() != msg+"\n" {
		t.Fatalf("logctl: %v, %q, %s", err, out.String(), errOut.String())
	}
	return col, d, errOut.String()
}

// TestTraceAcrossLogctlAndDaemon: with OTEL_EXPORTER_OTLP_ENDPOINT set for
// both, logctl's query span and the daemon's request span land in one
// trace, the daemon's a child of logctl's.
func TestTraceAcrossLogctlAndDaemon(t *testing.T) {
	col, d, _ := tailTraced(t, "traced hello", "OTEL_BSP_SCHEDULE_DELAY=50")
	client, ok := col.find("logctl query")
	if !ok {
		t.Fatalf("logctl exported no query span; collector has %+v", col.spans)
	}
	root, ok := col.find("logctl tail")
	if !ok || root.traceID != client.traceID || client.parentID != root.spanID {
		t.Fatalf("logctl spans not linked: root %+v, query %+v", root, client)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		server, ok := col.find("collectord query")
		if ok {
			if server.traceID != client.traceID || server.parentID != client.spanID {
				t.Fatalf("daemon span %+v is not a child of logctl's %+v", server, client)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon exported no query span")
		}
		time.Sleep(20 * time.Millisecond) // the daemon's batch exporter runs on its own schedule
	}
	d.Stop(t)
}

// TestTraceRefusedAlike: an OTEL_* value neither program can honour is
// refused by both, loudly and naming the variable, and neither traces;
// the query is answered all the same.
func TestTraceRefusedAlike(t *testing.T) {
	const refusal = "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only OTLP over HTTP"
	col, d, stderr := tailTraced(t, "untraced hello", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
	if want := "logctl: tracing off: " + refusal; !strings.Contains(stderr, want) {
		t.Errorf("logctl's stderr %q does not say %q", stderr, want)
	}
	d.Stop(t) // flushes the daemon's spans, had it any
	if logs := d.Logs.String(); !strings.Contains(logs, "tracing disabled") || !strings.Contains(logs, refusal) {
		t.Errorf("the daemon did not log the refusal:\n%s", logs)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.spans) != 0 {
		t.Errorf("the collector got spans %+v", col.spans)
	}
}
