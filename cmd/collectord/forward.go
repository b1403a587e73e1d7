package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/collectord/collectord/internal/forward"
)

// runForward is `collectord forward`, the forwarder process the daemon
// starts: its configuration arrives on stdin, reports leave on stdout,
// and it stops when stdin ends (the daemon stopped it, or died) or on
// SIGTERM.
func runForward() int {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil)).With("component", "forward", "pid", os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// Reports go to the daemon through a pipe on stdout. When the daemon
	// is gone, a report must fail with EPIPE, so that Child stops cleanly
	// (flushing, recording its position); Go would otherwise kill the
	// process with SIGPIPE, as it does for a broken stdout.
	signal.Ignore(syscall.SIGPIPE)
	if err := forward.Child(ctx, os.Stdin, os.Stdout, log); err != nil {
		log.Error("forwarder stopped", "err", err)
		return 1
	}
	return 0
}
