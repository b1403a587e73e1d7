package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The environment variables Setup reads itself; see the package doc for
// the ones the SDK reads.
const (
	envSDKDisabled    = "OTEL_SDK_DISABLED"
	envTracesExporter = "OTEL_TRACES_EXPORTER"
	envEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	envTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	envProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	envTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
)

// Setup returns the tracer provider the environment asks for, and the
// function that flushes and stops it.
//
//   - Tracing off (see the package doc): a noop provider, a shutdown that
//     does nothing, and a nil error. Nothing was started.
//   - Tracing on: an SDK provider exporting over OTLP/HTTP through a batch
//     span processor, its Shutdown, and a nil error. Call shutdown once,
//     before exiting, with a context that bounds how long the last export
//     may take (run it under context.WithoutCancel if the program's context
//     is already cancelled by then); spans that end after it are dropped.
//   - Misconfigured (an exporter or protocol that is not built in, a
//     malformed OTEL_RESOURCE_ATTRIBUTES): a noop provider, a shutdown that
//     does nothing, and an error naming the variable. Nothing was started,
//     so a caller may log the error and carry on untraced.
//
// serviceName is the service.name resource attribute unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES set one. Setup never
// touches otel's global provider.
func Setup(ctx context.Context, serviceName string) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	off := noop.NewTracerProvider()
	on, err := enabled(os.Getenv)
	if err != nil || !on {
		return off, noShutdown, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithHost(),
		resource.WithTelemetrySDK(),
		// Last, so that OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
		// override what comes before.
		resource.WithFromEnv(),
	)
	if err != nil {
		return off, noShutdown, fmt.Errorf("build tracing resource from OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME: %w", err)
	}
	// New only configures the exporter: it connects on the first export.
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return off, noShutdown, fmt.Errorf("create OTLP/HTTP trace exporter: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	shutdown = func(ctx context.Context) error {
		if err := sdk.Shutdown(ctx); err != nil {
			return fmt.Errorf("shut down tracing: %w", err)
		}
		return nil
	}
	return sdk, shutdown, nil
}

func noShutdown(context.Context) error { return nil }

// enabled decides from the environment whether to trace; the error names
// a variable whose value Setup cannot honour.
func enabled(getenv func(string) string) (bool, error) {
	env := func(key string) string { return strings.TrimSpace(getenv(key)) }
	if strings.EqualFold(env(envSDKDisabled), "true") {
		return false, nil
	}
	on := false
	if exporters := env(envTracesExporter); exporters != "" {
		for name := range strings.SplitSeq(exporters, ",") {
			switch name = strings.ToLower(strings.TrimSpace(name)); name {
			case "otlp":
				on = true
			case "none", "":
			default:
				return false, fmt.Errorf("%s=%s: exporter %q is not built in (otlp or none)", envTracesExporter, exporters, name)
			}
		}
	} else {
		on = env(envEndpoint) != "" || env(envTracesEndpoint) != ""
	}
	if !on {
		return false, nil
	}
	key, protocol := envTracesProtocol, env(envTracesProtocol)
	if protocol == "" {
		key, protocol = envProtocol, env(envProtocol)
	}
	switch protocol {
	case "", "http/protobuf", "http/json":
	default:
		return false, fmt.Errorf("%s=%s: only OTLP over HTTP is built in (http/protobuf or http/json)", key, protocol)
	}
	return true, nil
}
