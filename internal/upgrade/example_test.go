//go:build linux

package upgrade_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/collectord/collectord/internal/sdnotify"
	"github.com/collectord/collectord/internal/upgrade"
)

// The old process's side, on SIGHUP. stopReading and resume stand for the
// daemon's own ingest loop and ring lock. Here the new binary is broken (it
// exits at once), so the upgrade fails and the old process serves on.
func ExampleStart() {
	var (
		stopReading = func() {} // stop the ingest loop, publish, release the ring lock
		resume      = func() {} // take the lock again and read
	)
	dir, err := os.MkdirTemp("", "upgrade-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ingest, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "log.sock"), Net: "unixgram"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ingest.Close()
	query, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer query.Close()
	n := sdnotify.New()

	// Usually os.Executable() and os.Args: the binary now installed.
	exe, args := "/bin/sh", []string{"sh", "-c", "exit 3"}
	// WATCHDOG_PID names this process; the new one pings once it is main.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "WATCHDOG_PID=")
	})
	child, err := upgrade.Start(exe, args, env, []upgrade.NamedFile{
		{Name: "ingest", File: ingest},
		{Name: "query", File: query},
	})
	if err != nil {
		fmt.Println(err) // keep serving
		return
	}
	defer child.Abort() // does nothing once the handover completed

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := child.WaitReady(ctx); err != nil {
		fmt.Println("upgrade failed, still serving; new process exited:", errors.Is(err, upgrade.ErrChildExited))
		return
	}
	stopReading()
	if err := child.Released(ctx); err != nil {
		fmt.Println(err) // the child is dead
		resume()
		return
	}
	_ = n.Notify(fmt.Sprintf("MAINPID=%d\nREADY=1\nSTATUS=upgraded to pid %d", child.PID(), child.PID()))
	// ... close the listeners, drain query clients, exit.

	// Output: upgrade failed, still serving; new process exited: true
}

// The new process's side, early in main.
func ExampleInherited() {
	u, err := upgrade.Inherited()
	if err != nil {
		fmt.Println(err) // the old process keeps serving
		os.Exit(1)
	}
	if u == nil {
		fmt.Println("not started by an upgrade: bind the sockets, or take systemd's")
		return
	}
	files := u.Files()
	c, err := net.FileConn(files["ingest"])
	for _, f := range files {
		f.Close() // net.FileConn and net.FileListener made their own copies
	}
	if err != nil {
		_ = u.Failed("ingest socket: " + err.Error())
		os.Exit(1)
	}
	defer c.Close()
	// ... open the ring read-only, start the query server, metrics ...
	if err := u.Ready(); err != nil {
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := u.WaitReleased(ctx); err != nil {
		_ = u.Failed(err.Error())
		os.Exit(1)
	}
	// ... take the ring lock (flock) and start reading c ...
	if err := u.Running(); err != nil {
		fmt.Println(err) // the old process died meanwhile; we serve anyway
	}
	_ = upgrade.WritePIDFile("/run/collectord/collectord.pid", os.Getpid())
	// Output: not started by an upgrade: bind the sockets, or take systemd's
}
