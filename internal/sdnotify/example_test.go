//go:build linux

package sdnotify_test

import (
	"context"
	"log"
	"sync"

	"github.com/collectord/collectord/internal/sdnotify"
)

// The life of a Type=notify daemon: ready once it serves, a watchdog fed
// while it is healthy, stopping on the way out.
func Example() {
	n := sdnotify.New() // disabled, and harmless, outside systemd
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup

	// ... bind or inherit sockets, open the ring, start reading ...
	if err := n.Ready("serving"); err != nil {
		log.Printf("notify systemd: %v", err)
	}
	if d, ok := sdnotify.WatchdogInterval(); ok {
		healthy := func() error { return nil } // e.g. "the ingest loop made progress"
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.Watchdog(ctx, d/2, healthy)
		}()
	}

	// ... on SIGTERM:
	_ = n.Stopping()
	cancel()
	wg.Wait()
}
