package tracing

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/collectord/collectord/internal/otelenv"
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
//   - Misconfigured (a value otelenv refuses: an exporter or protocol that
//     is not built in, an endpoint that is not an http:// or https:// URL,
//     a malformed OTEL_RESOURCE_ATTRIBUTES): a noop provider, a shutdown
//     that does nothing, and the *otelenv.Error naming the variable.
//     Nothing was started, so a caller may log the error and carry on
//     untraced.
//
// serviceName is the service.name resource attribute unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES set one. Setup never
// touches otel's global provider.
func Setup(ctx context.Context, serviceName string) (tp trace.TracerProvider, shutdown func(context.Context) error, err error) {
	off := noop.NewTracerProvider()
	cfg, err := otelenv.Read(os.Getenv)
	if err != nil || !cfg.On {
		return off, noShutdown, err
	}
	// The environment's attributes come last, so that they override
	// what comes before, as OTEL_RESOURCE_ATTRIBUTES should.
	env := make([]attribute.KeyValue, 0, len(cfg.Attributes)+1)
	for _, a := range cfg.Attributes {
		env = append(env, attribute.String(a.Key, a.Value))
	}
	if cfg.ServiceName != "" {
		env = append(env, semconv.ServiceName(cfg.ServiceName))
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithHost(),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(env...),
	)
	if err != nil {
		return off, noShutdown, fmt.Errorf("build tracing resource: %w", err)
	}
	encoding := otlptracehttp.EncodingProtobuf
	if cfg.Protocol == otelenv.ProtocolJSON {
		encoding = otlptracehttp.EncodingJSON
	}
	// New only configures the exporter: it connects on the first export.
	// The endpoint and the encoding are otelenv's, passed as options so
	// that they override the exporter's own reading of the environment.
	exp, err := otlptracehttp.New(ctx,
		otlptracehttp.WithEndpointURL(cfg.Endpoint),
		otlptracehttp.WithEncoding(encoding),
	)
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
