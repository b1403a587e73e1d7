package otelenv_test

import (
	"fmt"

	"github.com/collectord/collectord/internal/otelenv"
)

// A program reads the policy once, says why it is not tracing when a value
// is refused, and otherwise posts its spans where Config says.
func ExampleRead() {
	env := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example.com",
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_RESOURCE_ATTRIBUTES":    "deployment.environment.name=prod,service.name=edge",
	}
	getenv := func(name string) string { return env[name] }
	if _, err := otelenv.Read(getenv); err != nil {
		fmt.Println("tracing off:", err)
	}

	env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/json"
	cfg, _ := otelenv.Read(getenv)
	fmt.Println(cfg.On, cfg.Endpoint, cfg.Protocol, cfg.ServiceName, cfg.Attributes)
	// Output:
	// tracing off: OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only OTLP over HTTP is built in (http/protobuf or http/json)
	// true https://otel.example.com/v1/traces http/json edge [{deployment.environment.name prod}]
}
