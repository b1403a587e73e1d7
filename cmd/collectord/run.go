package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/collectord/collectord/internal/daemon"
	"github.com/collectord/collectord/internal/tracing"
)

// Run serves with cfg until ctx is done or an upgrade (a value on reload)
// has handed over to a new process.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reload <-chan struct{}) error {
	exe, err := os.Executable()
	if err != nil {
		log.Warn("in-place upgrades disabled: cannot find our executable", "err", err)
		exe = ""
	}
	tp, shutdownTracing, err := tracing.Setup(ctx, "collectord")
	if err != nil {
		log.Warn("tracing disabled: bad OTEL_* configuration", "err", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("flush traces", "err", err)
		}
	}()
	return daemon.Run(ctx, daemon.Config{
		Socket:      cfg.Socket,
		SocketMode:  os.FileMode(cfg.SocketMode),
		RecvBuffer:  int(cfg.RecvBuffer),
		MaxMessage:  cfg.maxMessage(),
		Batch:       cfg.Batch,
		Ring:        cfg.Ring,
		RingSize:    uint64(cfg.RingSize),
		RingMode:    os.FileMode(cfg.RingMode),
		QueryAddr:   cfg.QueryAddr,
		MetricsAddr: cfg.MetricsAddr,
		PIDFile:     cfg.PIDFile,
		Exe:         exe,
		Args:        os.Args,
		Logger:      log,

		TracerProvider: tp,
	}, reload)
}
