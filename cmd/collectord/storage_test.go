//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
	"golang.org/x/sys/unix"
)

// diskDir returns a fresh directory on a disk filesystem (the test's
// temporary directory), skipping the test where that is a tmpfs: a
// persistent ring's syncs mean nothing there.
func diskDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		t.Skipf("%s is a tmpfs: a persistent ring needs a disk filesystem (set TMPDIR)", dir)
	}
	return dir
}

// messages returns "prefix 0" .. "prefix n-1".
func messages(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %d", prefix, i)
	}
	return out
}

// checkRing requires the ring at path to hold exactly want, in order,
// numbered consecutively from first.
func checkRing(t *testing.T, path string, first uint64, want []string) {
	t.Helper()
	recs := proctest.ReadRing(t, path)
	if len(recs) != len(want) {
		t.Fatalf("ring %s holds %d records, want %d", filepath.Base(path), len(recs), len(want))
	}
	for i, r := range recs {
		if r.Seq != first+uint64(i) || string(r.Message) != want[i] {
			t.Fatalf("record %d: seq %d %q, want seq %d %q", i, r.Seq, r.Message, first+uint64(i), want[i])
		}
	}
}

// TestPersistentRingSurvivesSIGKILL: a daemon with a persistent ring on a
// disk filesystem, killed with SIGKILL, loses nothing, and the next one
// numbers on after the last record.
func TestPersistentRingSurvivesSIGKILL(t *testing.T) {
	dir := diskDir(t)
	opts := proctest.DaemonOptions{Args: []string{"--storage", "persistent", "--sync-interval", "50ms"}}
	d := proctest.StartDaemon(t, dir, opts)
	if !strings.Contains(d.Logs.String(), `"durable":true`) {
		t.Fatalf("daemon with --storage persistent does not say its ring is durable:\n%s", d.Logs)
	}
	want := messages("before kill", 500)
	first := d.Send(t, want...)
	d.Signal(t, syscall.SIGKILL)
	<-d.Done()

	d = proctest.StartDaemon(t, dir, opts)
	checkRing(t, d.Ring, first, want)
	want = append(want, "after restart")
	d.Send(t, want[len(want)-1])
	d.Stop(t)
	checkRing(t, d.Ring, first, want)
}

// TestEarlyBootFlush: records a daemon kept in a volatile ring (as before
// /var is mounted) are moved into the persistent ring when a daemon starts
// with storage persistent: all of them, once, in order, numbered on from
// the persistent ring's own; the volatile ring is then gone, so a later
// start moves nothing again. A daemon killed in the middle of the move
// (the faultinject build) leaves it for the next start to finish, without
// duplicates.
func TestEarlyBootFlush(t *testing.T) {
	dir := diskDir(t)
	run, state := filepath.Join(dir, "run"), filepath.Join(dir, "state")
	volatile, persistent := filepath.Join(run, "ring"), filepath.Join(state, "ring")
	env := []string{"RUNTIME_DIRECTORY=" + run, "STATE_DIRECTORY=" + state}
	start := func(bin, storage, ring string, extraEnv ...string) *proctest.Daemon {
		return proctest.StartDaemon(t, dir, proctest.DaemonOptions{
			Binary: bin, Ring: ring, Env: append(env, extraEnv...),
			Args: []string{"--ring", "", "--storage", storage}, // the ring where storage puts it
		})
	}

	// The persistent ring already holds records of an earlier boot.
	d := start("", "persistent", persistent)
	old := messages("last boot", 10)
	first := d.Send(t, old...)
	d.Stop(t)

	// This boot's early records, in the volatile ring.
	d = start("", "volatile", volatile)
	early := messages("early boot", 1000)
	d.Send(t, early...)
	d.Stop(t)

	// A start killed after moving 300 of them.
	cmd := exec.Command(faultDaemon(t), "--socket", filepath.Join(dir, "c.sock"), "--storage", "persistent", "--ring-size", "1MiB",
		"--query-addr", "", "--metrics-addr", "")
	cmd.Env = append(append(os.Environ(), env...), "COLLECTORD_FAULT_FLUSH_KILL=300")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("daemon to be killed while moving the volatile ring: %v\n%s", err, out)
	}
	if _, err := os.Stat(volatile); err != nil {
		t.Fatalf("the volatile ring is gone after a move cut short: %v", err)
	}

	d = start("", "persistent", persistent)
	want := append(append([]string(nil), old...), early...)
	checkRing(t, persistent, first, want)
	if _, err := os.Stat(volatile); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("volatile ring still there after the move: %v", err)
	}
	if m, _ := filepath.Glob(volatile + ".*"); len(m) > 0 {
		t.Fatalf("files left beside the volatile ring: %q", m)
	}
	want = append(want, "after the move")
	d.Send(t, want[len(want)-1])
	d.Stop(t)

	d = start("", "persistent", persistent)
	d.Stop(t)
	checkRing(t, persistent, first, want)
}
