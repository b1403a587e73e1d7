//go:build linux

package sdnotify_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/collectord/collectord/internal/sdnotify"
)

// The life of a Type=notify daemon: ready once it serves, a watchdog fed
// while it is healthy, stopping on the way out. Here the example plays
// systemd too: it listens on the socket systemd would name in
// $NOTIFY_SOCKET and prints what the daemon tells it.
func Example() {
	dir, err := os.MkdirTemp("", "sdnotify-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	manager, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		log.Fatal(err)
	}
	defer manager.Close()
	received := func() string {
		buf := make([]byte, 4096)
		n, _, err := manager.ReadFrom(buf)
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%q", buf[:n])
	}
	os.Setenv("NOTIFY_SOCKET", manager.LocalAddr().String())
	defer os.Unsetenv("NOTIFY_SOCKET")

	// The daemon's side.
	n := sdnotify.New() // disabled, and harmless, outside systemd
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup

	// ... bind or inherit sockets, open the ring, start reading ...
	if err := n.Ready("serving"); err != nil {
		log.Printf("notify systemd: %v", err)
	}
	fmt.Println(received())
	if d, ok := sdnotify.WatchdogInterval(); ok {
		healthy := func() error { return nil } // e.g. "the ingest loop makes progress"
		wg.Go(func() { n.Watchdog(ctx, d/2, healthy) })
	}

	// ... on SIGTERM:
	_ = n.Stopping()
	fmt.Println(received())
	cancel()
	wg.Wait()
	// Output:
	// "READY=1\nSTATUS=serving"
	// "STOPPING=1"
}
