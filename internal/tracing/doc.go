// Package tracing builds collectord's OpenTelemetry tracer provider, the
// one the daemon passes to pkg/query, with the OpenTelemetry SDK and its
// OTLP/HTTP exporter. logctl does not use it: it traces with
// internal/litetrace, which links far less.
//
// # What is read
//
// Whether to trace, where spans go (OTEL_EXPORTER_OTLP_ENDPOINT,
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), in which protocol (http/protobuf
// or http/json; gRPC is refused) and the resource (OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, which override the service name passed to
// Setup) are decided by internal/otelenv, as for logctl; Setup returns
// otelenv's refusals. The resource also carries host.name and the SDK's
// identity.
//
// When tracing is on, the SDK and the exporter read the rest themselves:
// the exporter the other OTEL_EXPORTER_OTLP_* variables (headers, timeout,
// compression, TLS certificates); the batch span processor OTEL_BSP_*;
// the tracer provider OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG
// (default: parentbased_always_on) and the span limits (OTEL_SPAN_*,
// OTEL_ATTRIBUTE_*, OTEL_EVENT_* and OTEL_LINK_* limits). logctl's tracer
// reads none of these.
//
// # Cost
//
// Off, Setup returns a noop provider and starts nothing: no goroutine, no
// connection, no buffer. pkg/query treats a noop provider like a nil one
// and does no tracing work per query at all.
//
// On, the batch span processor owns one goroutine and a queue of at most
// OTEL_BSP_MAX_QUEUE_SIZE (2048) ended spans; it exports every
// OTEL_BSP_SCHEDULE_DELAY (5s) or when OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512)
// spans are waiting, over one HTTP connection. A span is dropped, never
// waited for, when the queue is full: tracing never slows a query down
// beyond building its span. The shutdown function Setup returns flushes
// the queue and stops the goroutine; call it before the program exits.
//
// Linking the package costs binary size whether tracing is on or not:
// about 11 MB over a program that already uses net/http, 8 MB of it gRPC
// code that the OTLP protobuf package links in although the HTTP
// exporter never calls it (opentelemetry-go issue 2579). It also costs
// start-up time, in package initialisation: too much for logctl (see
// bench/README.md, "logctl tracer: SDK or litetrace").
//
// # Globals
//
// Setup never installs anything as otel's global tracer provider or
// propagator: the provider is passed to whoever traces. The SDK still
// reports its own failures (an export that failed, a bad
// OTEL_TRACES_SAMPLER) through otel's global error handler, which by
// default logs them to stderr; a program that wants them elsewhere sets
// otel.SetErrorHandler in main.
package tracing
