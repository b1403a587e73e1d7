// Package otelenv reads the standard OTEL_* environment variables that
// decide whether a program traces, where its spans go and how they are
// encoded. collectord (internal/tracing, the OpenTelemetry SDK) and logctl
// (internal/litetrace) both decide through Read, so they accept and refuse
// exactly the same values. The package uses the standard library only.
//
// # What is read
//
//   - OTEL_SDK_DISABLED: "true" turns tracing off whatever else is set;
//     "false" or unset changes nothing; anything else is refused.
//   - OTEL_TRACES_EXPORTER: "otlp" turns tracing on, "none" off. A
//     comma-separated list may name both ("none" is then ignored); names
//     are trimmed and compared without case. Other exporters ("console",
//     "zipkin", ...) are not built in and are refused.
//   - OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT:
//     when OTEL_TRACES_EXPORTER is unset, either one being set turns
//     tracing on. The traces endpoint is the URL spans are posted to, used
//     as is; the other is a base URL to which "/v1/traces" is added. With
//     neither, spans go to DefaultEndpoint. Both programs speak plain HTTP
//     and HTTPS (verified against the system's roots): an endpoint that is
//     not an http:// or https:// URL with a host is refused.
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL:
//     "http/protobuf" (the default) or "http/json". OTLP over gRPC is not
//     built in, to keep the binaries small: "grpc" is refused rather than
//     silently replaced by another protocol.
//   - OTEL_SERVICE_NAME, else the service.name of OTEL_RESOURCE_ATTRIBUTES:
//     the service name, overriding the program's own.
//   - OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value pairs, values
//     percent-decoded, added to the resource. A pair without "=" or with
//     an empty key, or a bad %-escape, is refused.
//
// Tracing is off when none of OTEL_TRACES_EXPORTER,
// OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set. Values are trimmed of surrounding space, and an empty value counts
// as unset. A variable is only checked when its value would be used: a
// gRPC protocol with tracing off is not an error.
//
// # Refusals
//
// A value Read cannot honour turns tracing off and comes back as an
// *Error naming the variable and its value, for the program to print or
// log; the program carries on untraced. Nothing is ever silently ignored
// or replaced by a default.
//
// # Not read here
//
// The SDK in collectord also reads OTEL_TRACES_SAMPLER, OTEL_BSP_*, the
// span limits, and the exporter's OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT,
// _COMPRESSION, _CERTIFICATE and _CLIENT_* variables; logctl's tracer
// reads none of them (see internal/litetrace).
//
// # Concurrency
//
// Read is a pure function of the getenv it is given: safe for concurrent
// use, and the Config it returns is the caller's.
package otelenv
