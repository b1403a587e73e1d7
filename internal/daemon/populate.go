//go:build linux

package daemon

import (
	"context"
	"log/slog"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/pkg/shmring"
)

// schedIdle is Linux's SCHED_IDLE policy: run only on a CPU nothing else
// wants.
const schedIdle = 5

// populate maps the ring ahead of the writer, in the background: on a
// fresh ring every page would otherwise fault in the ingest loop, and
// after a takeover every page faults once more in this process. It runs on
// a thread of its own under SCHED_IDLE, so that it takes only CPU that
// ingest, queries and the senders leave: under a burst the ingest loop
// maps the pages it reaches itself, as it would without populate. The
// returned function stops it and waits for it.
func populate(w *shmring.Writer, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Never unlocked: the thread ends with this goroutine and takes
		// its policy with it. Threads the runtime starts meanwhile do not
		// inherit it: a locked thread has new threads made by another.
		runtime.LockOSThread()
		if err := unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: schedIdle}, 0); err != nil {
			log.Debug("map the ring ahead of the writer at normal priority", "err", err)
		}
		if err := w.Populate(ctx); err != nil && ctx.Err() == nil {
			log.Warn("map the ring ahead of the writer", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}
