package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/collectord/collectord/internal/daemon"
)

// Run serves with cfg until ctx is done or an upgrade (a value on reload)
// has handed over to a new process.
func Run(ctx context.Context, cfg Config, log *slog.Logger, reload <-chan struct{}) error {
	exe, err := os.Executable()
	if err != nil {
		log.Warn("in-place upgrades disabled: cannot find our executable", "err", err)
		exe = ""
	}
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
	}, reload)
}
