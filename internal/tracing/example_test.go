//go:build linux

package tracing_test

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/collectord/collectord/internal/tracing"
	"github.com/collectord/collectord/pkg/query"
)

// How main wires tracing: Setup once, hand the provider to whoever
// traces, and flush on the way out, under a bound of its own since the
// program's context is cancelled by then. A misconfiguration is logged and
// the program carries on untraced: here the environment asks for OTLP over
// gRPC, which is not built in.
func ExampleSetup() {
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
	os.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	defer os.Unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	defer os.Unsetenv("OTEL_EXPORTER_OTLP_PROTOCOL")

	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // for a stable example output
			}
			return a
		},
	}))
	tp, shutdown, err := tracing.Setup(ctx, "collectord")
	if err != nil {
		log.Warn("tracing disabled", "err", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(ctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()

	_ = query.Options{TracerProvider: tp}     // the daemon's query server
	_ = query.DialOptions{TracerProvider: tp} // a query client (logctl uses internal/litetrace)
	// Output:
	// level=WARN msg="tracing disabled" err="OTEL_EXPORTER_OTLP_PROTOCOL=grpc: only OTLP over HTTP is built in (http/protobuf or http/json)"
}
