// Command collectord is the per-host log collector daemon: it receives log
// datagrams on a UNIX socket and appends them to a memory-mapped ring file.
//
//	collectord [--config FILE] [--socket PATH] [--ring PATH] [--ring-size SIZE]
//	           [--query-addr HOST:PORT] [--metrics-addr HOST:PORT] [--log-level LEVEL]
//
// It logs JSON lines to stderr and stops cleanly on SIGTERM or SIGINT. On
// SIGHUP it re-executes its binary, which re-reads the configuration, and
// hands the sockets and the ring to the new process without losing a
// datagram (see internal/daemon).
//
// With a [kafka] table in the configuration, the daemon also runs
// `collectord forward`, the process that forwards the ring's records to
// Kafka (see internal/forward); it is not meant to be run by hand.
//
// docs/man/collectord.8 is its manual, made from its flag definitions and
// configs/collectord.toml (go generate).
package main

//go:generate go test -run ^TestManPage$ . -update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "forward" {
		os.Exit(runForward())
	}
	cfg, err := Load(os.Args[1:])
	if errors.Is(err, pflag.ErrHelp) {
		d := command()
		d.WriteHelp(os.Stdout, "")
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "collectord:", err)
		os.Exit(2)
	}
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel)) // validated by Load
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // an upgrade is already pending
			}
		}
	}()
	if err := Run(ctx, cfg, log, reload); err != nil {
		log.Error("collectord stopped", "err", err)
		os.Exit(1)
	}
}
