package otelenvtest

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/collectord/collectord/internal/otelenv"
)

// Setup is the setup under test: it reads the environment and returns a
// provider (a noop.TracerProvider when tracing is off), the function that
// exports what was recorded, and the refusal, if any. serviceName is the
// program's own name.
type Setup func(serviceName string) (trace.TracerProvider, func(context.Context) error, error)

// Environments are the OTEL_* environments Run decides in, one map each;
// they cover every rule otelenv's own tests check.
var Environments = []map[string]string{
	{},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "  "},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example.com/otlp/"},
	{"OTEL_TRACES_EXPORTER": "otlp"},
	{"OTEL_TRACES_EXPORTER": " OTLP "},
	{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
	{"OTEL_TRACES_EXPORTER": " None , otlp "},
	{"OTEL_TRACES_EXPORTER": "console"},
	{"OTEL_TRACES_EXPORTER": "otlp,zipkin"},
	{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
	{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"},
	{"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
	{"OTEL_SDK_DISABLED": "1", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "unix:///run/otel.sock"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "http:///v1/traces"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
	{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_RESOURCE_ATTRIBUTES": "no-equals-sign"},
	{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_RESOURCE_ATTRIBUTES": "a=%zz"},
}

// Run checks setup against otelenv.Read in every environment of
// Environments, then exports a span through it to a collector on loopback
// with each kind of endpoint and protocol.
func Run(t *testing.T, setup Setup) {
	t.Run("decisions", func(t *testing.T) {
		for _, env := range Environments {
			setEnv(t, env)
			want, wantErr := otelenv.Read(os.Getenv)
			tp, flush, err := setup("otelenvtest")
			_, off := tp.(noop.TracerProvider)
			var we, ge *otelenv.Error
			switch {
			case wantErr == nil && err != nil:
				t.Errorf("%v: setup refused: %v", env, err)
			case wantErr != nil && (!errors.As(err, &ge) || !errors.As(wantErr, &we) || ge.Name != we.Name):
				t.Errorf("%v: setup error %v, want otelenv's %v", env, err, wantErr)
			case off == want.On:
				t.Errorf("%v: setup returned a %T, want tracing on = %v", env, tp, want.On)
			}
			// Nothing was recorded: the flush must not even connect.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := flush(ctx); err != nil {
				t.Errorf("%v: flush with nothing recorded: %v", env, err)
			}
			cancel()
		}
	})
	t.Run("exports", func(t *testing.T) { runExports(t, setup) })
}

// setEnv makes env the whole OTEL_* environment for the rest of the test.
func setEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "") // restores the value after the test
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

func runExports(t *testing.T, setup Setup) {
	col := &collector{}
	plain := httptest.NewServer(col)
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(col)
	t.Cleanup(secure.Close)
	// Trust the TLS server's certificate as if it were a system root.
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)
	t.Setenv("SSL_CERT_DIR", t.TempDir())

	for _, tc := range []struct {
		name        string
		env         map[string]string
		path        string // where the request must go
		contentType string
		service     string
		attrs       map[string]string // resource attributes it must carry
	}{
		{"base endpoint, default protocol",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": plain.URL},
			"/v1/traces", "application/x-protobuf", "otelenvtest", nil},
		{"base endpoint with a path, http/json",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": plain.URL + "/otlp/", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
			"/otlp/v1/traces", "application/json", "otelenvtest", nil},
		{"traces endpoint as is, traces protocol wins",
			map[string]string{
				"OTEL_TRACES_EXPORTER":               "none,otlp",
				"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": plain.URL + "/custom",
				"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://127.0.0.1:1",
				"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
				"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "HTTP/JSON",
			},
			"/custom", "application/json", "otelenvtest", nil},
		{"traces endpoint without a path",
			map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": plain.URL},
			"/", "application/x-protobuf", "otelenvtest", nil},
		{"https",
			map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": secure.URL},
			"/v1/traces", "application/x-protobuf", "otelenvtest", nil},
		{"service name and resource attributes, protobuf",
			map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": plain.URL,
				"OTEL_SERVICE_NAME":           "edge",
				"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment.name=test%20run,service.name=ignored",
			},
			"/v1/traces", "application/x-protobuf", "edge", map[string]string{"deployment.environment.name": "test run"}},
		{"service name from the resource attributes, json",
			map[string]string{
				"OTEL_EXPORTER_OTLP_ENDPOINT": plain.URL,
				"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
				"OTEL_RESOURCE_ATTRIBUTES":    "service.name=edge,team=logs",
			},
			"/v1/traces", "application/json", "edge", map[string]string{"team": "logs"}},
	} {
		setEnv(t, tc.env)
		col.reset()
		tp, flush, err := setup("otelenvtest")
		if err != nil {
			t.Errorf("%s: setup: %v", tc.name, err)
			continue
		}
		_, span := tp.Tracer("otelenvtest").Start(context.Background(), "otelenvtest span")
		span.End()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = flush(ctx)
		cancel()
		if err != nil {
			t.Errorf("%s: flush: %v", tc.name, err)
			continue
		}
		got := col.requests()
		if len(got) != 1 {
			t.Errorf("%s: the collector got %d requests, want 1: %+v", tc.name, len(got), got)
			continue
		}
		r := got[0]
		if r.path != tc.path || r.contentType != tc.contentType || r.err != "" {
			t.Errorf("%s: POST %s (%s), error %q; want %s (%s)", tc.name, r.path, r.contentType, r.err, tc.path, tc.contentType)
		}
		if !slices.Equal(r.spans, []string{"otelenvtest span"}) || r.attrs["service.name"] != tc.service {
			t.Errorf("%s: spans %q of service %q, want the one span of %q", tc.name, r.spans, r.attrs["service.name"], tc.service)
		}
		for k, v := range tc.attrs {
			if r.attrs[k] != v {
				t.Errorf("%s: resource attributes %v, want %s=%q", tc.name, r.attrs, k, v)
			}
		}
	}
}

// collector is an OTLP/HTTP trace receiver that decodes both encodings.
type collector struct {
	mu   sync.Mutex
	reqs []request
}

// request is what the collector keeps of one export.
type request struct {
	path, contentType string
	spans             []string          // span names
	attrs             map[string]string // resource attributes with string values
	err               string            // why the body could not be decoded
}

func (c *collector) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = nil
}

func (c *collector) requests() []request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := request{path: r.URL.Path, contentType: r.Header.Get("Content-Type"), attrs: map[string]string{}}
	body, err := io.ReadAll(r.Body)
	if err == nil {
		switch req.contentType {
		case "application/json":
			err = decodeJSON(body, &req)
		case "application/x-protobuf":
			err = decodeProtobuf(body, &req)
		default:
			err = errors.New("unknown content type")
		}
	}
	if err != nil {
		req.err = err.Error()
	}
	c.mu.Lock()
	c.reqs = append(c.reqs, req)
	c.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", req.contentType)
	if req.contentType == "application/json" {
		io.WriteString(w, "{}")
	}
}

func decodeProtobuf(body []byte, req *request) error {
	var m coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &m); err != nil {
		return err
	}
	for _, rs := range m.ResourceSpans {
		for _, kv := range rs.GetResource().GetAttributes() {
			req.attrs[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				req.spans = append(req.spans, s.Name)
			}
		}
	}
	return nil
}

// decodeJSON decodes the OTLP JSON encoding as far as the checks need.
func decodeJSON(body []byte, req *request) error {
	var m struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []struct {
					Key   string
					Value struct{ StringValue string }
				}
			}
			ScopeSpans []struct {
				Spans []struct{ Name string }
			}
		}
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	for _, rs := range m.ResourceSpans {
		for _, kv := range rs.Resource.Attributes {
			req.attrs[kv.Key] = kv.Value.StringValue
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				req.spans = append(req.spans, s.Name)
			}
		}
	}
	return nil
}
