//go:build ignore

// This file is not part of logctl. bench/tracer/run.sh copies it into a
// copy of cmd/logctl and calls benchTracer where tail.go calls
// litetrace.Setup, to build logctl tracing as the daemon does: the
// OpenTelemetry SDK with its OTLP/HTTP exporter (otlptracehttp), which
// links the protobuf runtime and gRPC.
package main

import (
	"context"

	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/internal/tracing"
)

func benchTracer(serviceName string) (trace.TracerProvider, func(context.Context) error, error) {
	return tracing.Setup(context.Background(), serviceName)
}
