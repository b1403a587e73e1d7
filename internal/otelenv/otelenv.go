package otelenv

import (
	"net/url"
	"strings"
)

// The variables Read reads.
const (
	EnvSDKDisabled        = "OTEL_SDK_DISABLED"
	EnvTracesExporter     = "OTEL_TRACES_EXPORTER"
	EnvEndpoint           = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint     = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol           = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol     = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvServiceName        = "OTEL_SERVICE_NAME"
	EnvResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
)

// The protocols, as OTEL_EXPORTER_OTLP_PROTOCOL spells them.
const (
	ProtocolProtobuf = "http/protobuf"
	ProtocolJSON     = "http/json"
)

// DefaultEndpoint is where spans go when tracing is on and no endpoint is
// set: a collector on this host.
const DefaultEndpoint = "http://localhost:4318/v1/traces"

// Config is what the environment asks of a program's tracing.
type Config struct {
	// On says whether to trace. When it is false, every other field is
	// zero.
	On bool
	// Endpoint is the http:// or https:// URL to post spans to.
	Endpoint string
	// Protocol is ProtocolProtobuf or ProtocolJSON.
	Protocol string
	// ServiceName is the service name the environment sets, to use
	// instead of the program's own; "" when it sets none.
	ServiceName string
	// Attributes are the resource attributes of OTEL_RESOURCE_ATTRIBUTES
	// other than service.name, in the order given, values decoded; a key
	// given twice appears once, with its last value.
	Attributes []Attribute
}

// Attribute is one resource attribute.
type Attribute struct{ Key, Value string }

// Error is a value Read cannot honour.
type Error struct {
	Name   string // the variable, e.g. "OTEL_EXPORTER_OTLP_PROTOCOL"
	Value  string // its value, trimmed
	Reason string // what is wrong, and what would be accepted
}

func (e *Error) Error() string { return e.Name + "=" + e.Value + ": " + e.Reason }

// Read decides from getenv (os.Getenv in a program) whether to trace and
// how:
//
//   - tracing off: a Config with On false, and a nil error;
//   - tracing on: a Config with On true, every field but ServiceName and
//     Attributes set, and a nil error;
//   - a value Read cannot honour: a Config with On false, and an *Error
//     naming the variable. The program should say so and carry on
//     untraced.
func Read(getenv func(string) string) (Config, error) {
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	refuse := func(name, reason string) (Config, error) {
		return Config{}, &Error{Name: name, Value: env(name), Reason: reason}
	}

	switch disabled := env(EnvSDKDisabled); {
	case strings.EqualFold(disabled, "true"):
		return Config{}, nil
	case disabled != "" && !strings.EqualFold(disabled, "false"):
		return refuse(EnvSDKDisabled, "want true or false")
	}

	on := false
	if exporters := env(EnvTracesExporter); exporters != "" {
		for name := range strings.SplitSeq(exporters, ",") {
			switch name = strings.ToLower(strings.TrimSpace(name)); name {
			case "otlp":
				on = true
			case "none", "":
			default:
				return refuse(EnvTracesExporter, `exporter "`+name+`" is not built in (otlp or none)`)
			}
		}
	} else {
		on = env(EnvEndpoint) != "" || env(EnvTracesEndpoint) != ""
	}
	if !on {
		return Config{}, nil
	}

	cfg := Config{On: true}
	endpointVar := EnvTracesEndpoint
	cfg.Endpoint = env(EnvTracesEndpoint)
	if cfg.Endpoint == "" {
		endpointVar = EnvEndpoint
		cfg.Endpoint = env(EnvEndpoint)
	}
	switch u, err := url.Parse(cfg.Endpoint); {
	case cfg.Endpoint == "":
		cfg.Endpoint = DefaultEndpoint
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return refuse(endpointVar, "want an http:// or https:// URL with a host")
	case endpointVar == EnvEndpoint:
		// A base URL: the traces go to its /v1/traces.
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
		u.RawPath = ""
		cfg.Endpoint = u.String()
	}

	protocolVar := EnvTracesProtocol
	cfg.Protocol = strings.ToLower(env(EnvTracesProtocol))
	if cfg.Protocol == "" {
		protocolVar = EnvProtocol
		cfg.Protocol = strings.ToLower(env(EnvProtocol))
	}
	switch cfg.Protocol {
	case "":
		cfg.Protocol = ProtocolProtobuf
	case ProtocolProtobuf, ProtocolJSON:
	default:
		return refuse(protocolVar, "only OTLP over HTTP is built in (http/protobuf or http/json)")
	}

	if attrs := env(EnvResourceAttributes); attrs != "" {
		for pair := range strings.SplitSeq(attrs, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, v, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return refuse(EnvResourceAttributes, "want KEY=VALUE pairs separated by commas, got "+strings.TrimSpace(pair))
			}
			v, err := url.PathUnescape(strings.TrimSpace(v))
			if err != nil {
				return refuse(EnvResourceAttributes, "value of "+k+": "+err.Error())
			}
			cfg.setAttribute(k, v)
		}
	}
	if name := env(EnvServiceName); name != "" {
		cfg.ServiceName = name
	}
	return cfg, nil
}

// setAttribute sets a resource attribute; a key given twice keeps its
// first place and its last value.
func (c *Config) setAttribute(k, v string) {
	if k == "service.name" {
		c.ServiceName = v
		return
	}
	for i := range c.Attributes {
		if c.Attributes[i].Key == k {
			c.Attributes[i].Value = v
			return
		}
	}
	c.Attributes = append(c.Attributes, Attribute{Key: k, Value: v})
}
