package otelenv

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	// on is the Config of tracing on with the defaults, for rows to adjust.
	on := func(adjust ...func(*Config)) Config {
		c := Config{On: true, Endpoint: DefaultEndpoint, Protocol: ProtocolProtobuf}
		for _, f := range adjust {
			f(&c)
		}
		return c
	}
	endpoint := func(u string) func(*Config) { return func(c *Config) { c.Endpoint = u } }
	protocol := func(p string) func(*Config) { return func(c *Config) { c.Protocol = p } }
	const base = "http://127.0.0.1:4318"
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		refused string // the variable the error must name; "" for none
	}{
		// On or off.
		{"nothing set", nil, Config{}, ""},
		{"blank endpoint", map[string]string{EnvEndpoint: "  "}, Config{}, ""},
		{"blank exporter, endpoint", map[string]string{EnvTracesExporter: " ", EnvEndpoint: base}, on(endpoint(base + "/v1/traces")), ""},
		{"endpoint", map[string]string{EnvEndpoint: base}, on(endpoint(base + "/v1/traces")), ""},
		{"traces endpoint", map[string]string{EnvTracesEndpoint: base + "/v1/traces"}, on(endpoint(base + "/v1/traces")), ""},
		{"exporter otlp", map[string]string{EnvTracesExporter: "otlp"}, on(), ""},
		{"exporter OTLP with spaces", map[string]string{EnvTracesExporter: " OTLP "}, on(), ""},
		{"exporter none", map[string]string{EnvTracesExporter: "none", EnvEndpoint: base}, Config{}, ""},
		{"exporter None", map[string]string{EnvTracesExporter: " None ", EnvEndpoint: base}, Config{}, ""},
		{"exporter list", map[string]string{EnvTracesExporter: "none,otlp"}, on(), ""},
		{"exporter list with spaces and case", map[string]string{EnvTracesExporter: " Otlp , NONE ,"}, on(), ""},
		{"exporter list of none", map[string]string{EnvTracesExporter: "none, ,none", EnvEndpoint: base}, Config{}, ""},
		{"exporter console", map[string]string{EnvTracesExporter: "console"}, Config{}, EnvTracesExporter},
		{"unknown exporter next to otlp", map[string]string{EnvTracesExporter: "otlp,zipkin", EnvEndpoint: base}, Config{}, EnvTracesExporter},
		{"sdk disabled", map[string]string{EnvSDKDisabled: "true", EnvEndpoint: base}, Config{}, ""},
		{"sdk disabled TRUE", map[string]string{EnvSDKDisabled: " TRUE ", EnvTracesExporter: "otlp"}, Config{}, ""},
		{"sdk disabled wins over a bad value", map[string]string{EnvSDKDisabled: "true", EnvTracesExporter: "console"}, Config{}, ""},
		{"sdk not disabled", map[string]string{EnvSDKDisabled: "False", EnvEndpoint: base}, on(endpoint(base + "/v1/traces")), ""},
		{"sdk disabled 1", map[string]string{EnvSDKDisabled: "1", EnvEndpoint: base}, Config{}, EnvSDKDisabled},
		{"sdk disabled yes, tracing not asked for", map[string]string{EnvSDKDisabled: "yes"}, Config{}, EnvSDKDisabled},

		// Endpoints.
		{"base with a slash", map[string]string{EnvEndpoint: base + "/"}, on(endpoint(base + "/v1/traces")), ""},
		{"base with a path", map[string]string{EnvEndpoint: "https://otel.example.com/otlp/"}, on(endpoint("https://otel.example.com/otlp/v1/traces")), ""},
		{"base with spaces", map[string]string{EnvEndpoint: " " + base + "\t"}, on(endpoint(base + "/v1/traces")), ""},
		{"traces endpoint as is", map[string]string{EnvTracesEndpoint: base + "/custom/"}, on(endpoint(base + "/custom/")), ""},
		{"traces endpoint without a path", map[string]string{EnvTracesEndpoint: base}, on(endpoint(base)), ""},
		{"traces endpoint wins", map[string]string{EnvTracesEndpoint: base + "/t", EnvEndpoint: "http://other:4318"}, on(endpoint(base + "/t")), ""},
		{"unused bad base", map[string]string{EnvTracesEndpoint: base + "/t", EnvEndpoint: "other:4318"}, on(endpoint(base + "/t")), ""},
		{"blank traces endpoint", map[string]string{EnvTracesEndpoint: " ", EnvEndpoint: base}, on(endpoint(base + "/v1/traces")), ""},
		{"exporter otlp and endpoint", map[string]string{EnvTracesExporter: "otlp", EnvEndpoint: base}, on(endpoint(base + "/v1/traces")), ""},
		{"https", map[string]string{EnvTracesEndpoint: "https://otel.example.com/v1/traces"}, on(endpoint("https://otel.example.com/v1/traces")), ""},
		{"scheme in capitals", map[string]string{EnvEndpoint: "HTTPS://otel.example.com"}, on(endpoint("https://otel.example.com/v1/traces")), ""},
		{"no scheme", map[string]string{EnvEndpoint: "localhost:4318"}, Config{}, EnvEndpoint},
		{"traces endpoint without scheme", map[string]string{EnvTracesEndpoint: "127.0.0.1:4318", EnvEndpoint: base}, Config{}, EnvTracesEndpoint},
		{"no host", map[string]string{EnvEndpoint: "http:///v1/traces"}, Config{}, EnvEndpoint},
		{"grpc scheme", map[string]string{EnvEndpoint: "grpc://127.0.0.1:4317"}, Config{}, EnvEndpoint},
		{"unix socket", map[string]string{EnvTracesEndpoint: "unix:///run/otel.sock"}, Config{}, EnvTracesEndpoint},
		{"bad port", map[string]string{EnvEndpoint: "http://127.0.0.1:http"}, Config{}, EnvEndpoint},
		{"bad endpoint while off", map[string]string{EnvTracesExporter: "none", EnvEndpoint: "localhost:4318"}, Config{}, ""},

		// Protocols.
		{"http/protobuf", map[string]string{EnvEndpoint: base, EnvProtocol: "http/protobuf"}, on(endpoint(base + "/v1/traces")), ""},
		{"http/json", map[string]string{EnvEndpoint: base, EnvTracesProtocol: "http/json"}, on(endpoint(base+"/v1/traces"), protocol(ProtocolJSON)), ""},
		{"HTTP/JSON with spaces", map[string]string{EnvEndpoint: base, EnvProtocol: " HTTP/JSON "}, on(endpoint(base+"/v1/traces"), protocol(ProtocolJSON)), ""},
		{"grpc", map[string]string{EnvEndpoint: base, EnvProtocol: "grpc"}, Config{}, EnvProtocol},
		{"traces grpc", map[string]string{EnvEndpoint: base, EnvProtocol: "http/protobuf", EnvTracesProtocol: "grpc"}, Config{}, EnvTracesProtocol},
		{"traces protocol wins", map[string]string{EnvEndpoint: base, EnvProtocol: "grpc", EnvTracesProtocol: "http/json"}, on(endpoint(base+"/v1/traces"), protocol(ProtocolJSON)), ""},
		{"http alone", map[string]string{EnvTracesExporter: "otlp", EnvProtocol: "http"}, Config{}, EnvProtocol},
		{"grpc while off", map[string]string{EnvProtocol: "grpc"}, Config{}, ""},

		// Service name and resource attributes.
		{"service name", map[string]string{EnvTracesExporter: "otlp", EnvServiceName: " edge "}, on(func(c *Config) { c.ServiceName = "edge" }), ""},
		{"resource attributes", map[string]string{EnvTracesExporter: "otlp", EnvResourceAttributes: "a=1, b = x%20y ,,service.name=svc,a=2"},
			on(func(c *Config) {
				c.ServiceName = "svc"
				c.Attributes = []Attribute{{"a", "2"}, {"b", "x y"}}
			}), ""},
		{"service name wins over the attribute", map[string]string{EnvTracesExporter: "otlp", EnvServiceName: "edge", EnvResourceAttributes: "service.name=svc"},
			on(func(c *Config) { c.ServiceName = "edge" }), ""},
		{"attribute without =", map[string]string{EnvTracesExporter: "otlp", EnvResourceAttributes: "a=1,no-equals-sign"}, Config{}, EnvResourceAttributes},
		{"attribute without key", map[string]string{EnvTracesExporter: "otlp", EnvResourceAttributes: " =1"}, Config{}, EnvResourceAttributes},
		{"bad escape", map[string]string{EnvTracesExporter: "otlp", EnvResourceAttributes: "a=%zz"}, Config{}, EnvResourceAttributes},
		{"bad attributes while off", map[string]string{EnvResourceAttributes: "no-equals-sign"}, Config{}, ""},
	}
	for _, tc := range tests {
		got, err := Read(func(k string) string { return tc.env[k] })
		var e *Error
		switch {
		case tc.refused == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.refused != "" && (!errors.As(err, &e) || e.Name != tc.refused):
			t.Errorf("%s: error %v, want an *Error naming %s", tc.name, err, tc.refused)
		case tc.refused != "" && !strings.HasPrefix(err.Error(), tc.refused+"="+strings.TrimSpace(tc.env[tc.refused])+": "):
			t.Errorf("%s: error %q, want it to start with the variable and its value", tc.name, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// FuzzRead checks what Read promises whatever the values: a refusal is an
// *Error naming a variable it reads and leaves tracing off; tracing on
// has an http(s) endpoint with a host and a protocol it names.
func FuzzRead(f *testing.F) {
	f.Add("otlp", "http://127.0.0.1:4318", "", "http/json", "a=1,service.name=x")
	f.Add("", "", "https://h/v1/traces", "", "")
	f.Add("none,OTLP", "localhost:4318", "", "grpc", "no-equals")
	f.Add("otlp", "http://h:1/%zz", " ", "", "a=%zz")
	f.Fuzz(func(t *testing.T, exporter, endpoint, tracesEndpoint, protocol, attrs string) {
		env := map[string]string{
			EnvTracesExporter:     exporter,
			EnvEndpoint:           endpoint,
			EnvTracesEndpoint:     tracesEndpoint,
			EnvProtocol:           protocol,
			EnvResourceAttributes: attrs,
		}
		cfg, err := Read(func(k string) string { return env[k] })
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not an *Error", err)
			}
			if _, ok := env[e.Name]; !ok {
				t.Errorf("error %v names a variable that was not set", err)
			}
			if !reflect.DeepEqual(cfg, Config{}) {
				t.Errorf("refused with %v, but Config %+v", err, cfg)
			}
			return
		}
		if !cfg.On {
			if !reflect.DeepEqual(cfg, Config{}) {
				t.Errorf("off, but Config %+v", cfg)
			}
			return
		}
		if u, err := url.Parse(cfg.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Errorf("endpoint %q (%v)", cfg.Endpoint, err)
		}
		if cfg.Protocol != ProtocolProtobuf && cfg.Protocol != ProtocolJSON {
			t.Errorf("protocol %q", cfg.Protocol)
		}
	})
}
