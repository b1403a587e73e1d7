package tracing

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/collectord/collectord/internal/otelenv"
	"github.com/collectord/collectord/internal/otelenv/otelenvtest"
)

// clearOTelEnv unsets every OTEL_* variable for the test, so that the
// environment the tests run in cannot decide for them.
func clearOTelEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
}

// TestSetupEnabled: Setup traces when otelenv says so, and returns its
// refusals.
func TestSetupEnabled(t *testing.T) {
	const (
		envSDKDisabled    = otelenv.EnvSDKDisabled
		envTracesExporter = otelenv.EnvTracesExporter
		envEndpoint       = otelenv.EnvEndpoint
		envTracesEndpoint = otelenv.EnvTracesEndpoint
		envProtocol       = otelenv.EnvProtocol
		envTracesProtocol = otelenv.EnvTracesProtocol
	)
	tests := []struct {
		name    string
		env     map[string]string
		on      bool
		errWith string // a substring of the error; "" for none
	}{
		{"nothing set", nil, false, ""},
		{"endpoint", map[string]string{envEndpoint: "http://127.0.0.1:4318"}, true, ""},
		{"traces endpoint", map[string]string{envTracesEndpoint: "http://127.0.0.1:4318/v1/traces"}, true, ""},
		{"blank endpoint", map[string]string{envEndpoint: "  "}, false, ""},
		{"exporter otlp", map[string]string{envTracesExporter: "otlp"}, true, ""},
		{"exporter OTLP", map[string]string{envTracesExporter: " OTLP "}, true, ""},
		{"exporter none", map[string]string{envTracesExporter: "none", envEndpoint: "http://127.0.0.1:4318"}, false, ""},
		{"exporter list", map[string]string{envTracesExporter: "none,otlp"}, true, ""},
		{"exporter console", map[string]string{envTracesExporter: "console"}, false, `exporter "console" is not built in`},
		{"sdk disabled", map[string]string{envSDKDisabled: "true", envEndpoint: "http://127.0.0.1:4318"}, false, ""},
		{"sdk disabled TRUE", map[string]string{envSDKDisabled: "TRUE", envTracesExporter: "otlp"}, false, ""},
		{"sdk not disabled", map[string]string{envSDKDisabled: "false", envEndpoint: "http://127.0.0.1:4318"}, true, ""},
		{"http/protobuf", map[string]string{envEndpoint: "http://x", envProtocol: "http/protobuf"}, true, ""},
		{"http/json", map[string]string{envEndpoint: "http://x", envTracesProtocol: "http/json"}, true, ""},
		{"grpc", map[string]string{envEndpoint: "http://x", envProtocol: "grpc"}, false, "OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only OTLP over HTTP"},
		{"traces grpc", map[string]string{envEndpoint: "http://x", envProtocol: "http/protobuf", envTracesProtocol: "grpc"}, false, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc"},
		{"traces protocol wins", map[string]string{envEndpoint: "http://x", envProtocol: "grpc", envTracesProtocol: "http/protobuf"}, true, ""},
		{"grpc while off", map[string]string{envProtocol: "grpc"}, false, ""},
	}
	for _, tc := range tests {
		clearOTelEnv(t)
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		tp, shutdown, err := Setup(context.Background(), "collectord")
		_, off := tp.(noop.TracerProvider)
		switch {
		case tc.errWith == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.errWith != "" && (err == nil || !strings.Contains(err.Error(), tc.errWith)):
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.errWith)
		case off == tc.on:
			t.Errorf("%s: Setup returned a %T, want tracing on = %v", tc.name, tp, tc.on)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("%s: shutdown: %v", tc.name, err)
		}
	}
}

// TestConformance: Setup follows the same OTEL_* rules as logctl's tracer.
func TestConformance(t *testing.T) {
	otelenvtest.Run(t, func(serviceName string) (trace.TracerProvider, func(context.Context) error, error) {
		return Setup(context.Background(), serviceName)
	})
}

func TestSetupOff(t *testing.T) {
	clearOTelEnv(t)
	before := runtime.NumGoroutine()
	tp, shutdown, err := Setup(context.Background(), "collectord")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tp.(noop.TracerProvider); !ok {
		t.Errorf("Setup with no OTEL_* variable returned a %T, want noop.TracerProvider", tp)
	}
	if after := runtime.NumGoroutine(); after != before {
		t.Errorf("%d goroutines before Setup, %d after: tracing off started something", before, after)
	}
	_, span := tp.Tracer("test").Start(context.Background(), "x")
	if span.IsRecording() {
		t.Error("a span of the provider records")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func TestSetupMisconfigured(t *testing.T) {
	for _, tc := range []struct {
		env   map[string]string
		names string
	}{
		{map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_RESOURCE_ATTRIBUTES": "no-equals-sign"}, "OTEL_RESOURCE_ATTRIBUTES"},
	} {
		clearOTelEnv(t)
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		before := runtime.NumGoroutine()
		tp, shutdown, err := Setup(context.Background(), "collectord")
		if err == nil || !strings.Contains(err.Error(), tc.names) {
			t.Errorf("%v: Setup: %v, want an error naming %s", tc.env, err, tc.names)
		}
		if _, ok := tp.(noop.TracerProvider); !ok {
			t.Errorf("%v: misconfigured Setup returned a %T, want a noop provider to carry on with", tc.env, tp)
		}
		if after := runtime.NumGoroutine(); after != before {
			t.Errorf("%v: %d goroutines before Setup, %d after", tc.env, before, after)
		}
		if err := shutdown(context.Background()); err != nil {
			t.Errorf("%v: shutdown: %v", tc.env, err)
		}
	}
}

// collector is an OTLP/HTTP trace receiver on loopback that keeps what it
// is sent.
type collector struct {
	*httptest.Server
	mu       sync.Mutex
	requests int
	spans    []string          // span names
	services map[string]int    // service.name -> spans
	attrs    map[string]string // resource attributes (string values) seen
	bad      []string          // requests it could not take
}

func newCollector(t *testing.T) *collector {
	c := &collector{services: make(map[string]int), attrs: make(map[string]string)}
	c.Server = httptest.NewServer(http.HandlerFunc(c.serve))
	t.Cleanup(c.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/v1/traces") ||
		r.Header.Get("Content-Type") != "application/x-protobuf" {
		c.bad = append(c.bad, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type"))
		http.Error(w, "not an OTLP/HTTP protobuf trace export", http.StatusNotFound)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			c.bad = append(c.bad, "gzip: "+err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	b, err := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(b, &req)
	}
	if err != nil {
		c.bad = append(c.bad, "body: "+err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.requests++
	for _, rs := range req.ResourceSpans {
		service := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			c.attrs[kv.Key] = kv.GetValue().GetStringValue()
			if kv.Key == "service.name" {
				service = kv.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, s.Name)
				c.services[service]++
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (c *collector) snapshot() (requests int, spans []string, services map[string]int, attrs map[string]string, bad []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	services = make(map[string]int)
	for k, v := range c.services {
		services[k] = v
	}
	attrs = make(map[string]string)
	for k, v := range c.attrs {
		attrs[k] = v
	}
	return c.requests, append([]string(nil), c.spans...), services, attrs, append([]string(nil), c.bad...)
}

// traceSome sets tracing up, records n spans and shuts down, which must
// flush them.
func traceSome(t *testing.T, n int) {
	t.Helper()
	tp, shutdown, err := Setup(context.Background(), "collectord")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := tp.(*sdktrace.TracerProvider); !ok {
		t.Fatalf("Setup returned a %T, want the SDK's provider", tp)
	}
	tracer := tp.Tracer("test")
	for range n {
		_, span := tracer.Start(context.Background(), "collectord query", trace.WithSpanKind(trace.SpanKindServer))
		span.End()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestSetupExportsOverOTLPHTTP(t *testing.T) {
	t.Run("endpoint", func(t *testing.T) {
		clearOTelEnv(t)
		col := newCollector(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
		t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "600000") // only shutdown flushes
		traceSome(t, 3)
		requests, spans, services, attrs, bad := col.snapshot()
		if len(bad) > 0 {
			t.Errorf("the collector refused %v", bad)
		}
		if requests == 0 || len(spans) != 3 || services["collectord"] != 3 {
			t.Errorf("%d requests, spans %v, services %v; want the 3 spans of collectord", requests, spans, services)
		}
		if attrs["host.name"] == "" || attrs["telemetry.sdk.language"] != "go" {
			t.Errorf("resource attributes %v, want host.name and telemetry.sdk.*", attrs)
		}
	})
	t.Run("traces endpoint, service from the environment, gzip", func(t *testing.T) {
		clearOTelEnv(t)
		col := newCollector(t)
		t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", col.URL+"/otlp/v1/traces")
		t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
		t.Setenv("OTEL_SERVICE_NAME", "collectord-edge")
		t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=test,service.name=ignored")
		traceSome(t, 2)
		_, spans, services, attrs, bad := col.snapshot()
		if len(bad) > 0 {
			t.Errorf("the collector refused %v", bad)
		}
		if len(spans) != 2 || services["collectord-edge"] != 2 {
			t.Errorf("spans %v of services %v, want 2 of collectord-edge (OTEL_SERVICE_NAME wins)", spans, services)
		}
		if attrs["deployment.environment.name"] != "test" {
			t.Errorf("resource attributes %v, want those of OTEL_RESOURCE_ATTRIBUTES", attrs)
		}
	})
	t.Run("sampler from the environment", func(t *testing.T) {
		clearOTelEnv(t)
		col := newCollector(t)
		t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
		t.Setenv("OTEL_TRACES_SAMPLER", "always_off")
		traceSome(t, 3)
		if _, spans, _, _, bad := col.snapshot(); len(spans) != 0 || len(bad) != 0 {
			t.Errorf("spans %v (refused %v), want none with OTEL_TRACES_SAMPLER=always_off", spans, bad)
		}
	})
}
