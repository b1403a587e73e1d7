// Package litetrace is logctl's OpenTelemetry tracer: it records the few
// spans a logctl run makes in memory and exports them once, at exit, in
// one OTLP/HTTP request on a connection of its own.
//
// It exists for logctl's start-up time. Go initialises every linked
// package at every start, traced or not, and the OpenTelemetry SDK links
// net/http and a resource and metrics layer that logctl otherwise does
// without; this package links nothing beyond the OpenTelemetry API and
// standard library packages logctl already has. Measured with tracing off
// (bench/README.md, "logctl tracer: SDK or litetrace"), the SDK alone,
// with a small exporter of our own, made `logctl tail -n 0 --ring` 15-20%
// slower (an estimated 0.4-0.5 ms on a quiet host) and logctl 2.5 MB
// larger; the SDK with its OTLP/HTTP exporter, as the daemon has it,
// 55-75% slower and 11.7 MB larger.
//
// # What is read
//
// Whether to trace, where and in which protocol is internal/otelenv's
// decision, the same as for the daemon's SDK (internal/tracing): http://
// and https:// endpoints (TLS verified against the system's roots), OTLP
// protobuf (encoded by hand here, without the protobuf runtime) or JSON.
// The resource is service.name (OTEL_SERVICE_NAME, else the name given to
// Setup) and the attributes of OTEL_RESOURCE_ATTRIBUTES. A value otelenv
// refuses is Setup's error, for logctl to print.
//
// Unlike the SDK it reads nothing else: not OTEL_TRACES_SAMPLER (every
// span is recorded and exported; a root span is marked sampled, a child
// keeps its parent's flag), nor OTEL_BSP_* or the span limits, nor the exporter's
// OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, _CERTIFICATE and
// _CLIENT_* variables (a collector that needs them refuses the export,
// and logctl prints the error). Events and links are dropped.
//
// # Concurrency and cost
//
// Spans may be started, changed and ended from any goroutine. Ended spans
// are kept until Flush, which takes them, encodes them and posts them,
// waiting at most until its context is done; a failed export is Flush's
// error and the spans are gone (no retry). Off, Setup returns a no-op
// provider: nothing is recorded or started.
package litetrace
