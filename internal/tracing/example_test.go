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
// the program carries on untraced.
func ExampleSetup() {
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
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
	_ = query.DialOptions{TracerProvider: tp} // logctl's client
}
