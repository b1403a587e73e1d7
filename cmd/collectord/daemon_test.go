package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/shmring"
)

// The daemon tests run the real binaries, built once by proctest: the
// daemon, and logctl as the follower that must survive restarts.
func TestMain(m *testing.M) {
	proctest.Main(m, nil)
}

// argsAnonymousAll makes the daemon answer TCP clients without a token or
// certificate with every record: the tests of restarts, upgrades and load
// query it as such clients do on a trusted host.
var argsAnonymousAll = []string{"--query-anonymous", "all"}

// TestStopStartContinues: SIGTERM stops the daemon cleanly with
// everything it read published, and the next start continues the sequence.
func TestStopStartContinues(t *testing.T) {
	dir := t.TempDir()
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{})
	d.Logger(t, nil, "-t", "first", "one")
	d.Logger(t, nil, "-t", "first", "two")
	d.Stop(t)
	if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket file left after a clean stop: %v", err)
	}
	d = proctest.StartDaemon(t, dir, proctest.DaemonOptions{})
	if !strings.Contains(d.Logs.String(), `"records":2`) {
		t.Errorf("restart did not report the 2 recovered records:\n%s", d.Logs)
	}
	d.Logger(t, nil, "-t", "second", "three")
	d.Stop(t)

	recs := proctest.ReadRing(t, d.Ring)
	var got []string
	for i, r := range recs {
		if r.Seq != shmring.FirstSeq+uint64(i) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
		got = append(got, string(r.Tag)+":"+string(r.Message))
	}
	if want := "first:one first:two second:three"; strings.Join(got, " ") != want {
		t.Fatalf("ring holds %q, want %q", got, want)
	}
}

// TestStaleSocketReplaced: after a crash leaves the socket file behind,
// the next start replaces it; a regular file in its place is refused and
// left alone.
func TestStaleSocketReplaced(t *testing.T) {
	dir := t.TempDir()
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{})
	d.Signal(t, syscall.SIGKILL)
	<-d.Done()
	if _, err := os.Stat(d.Socket); err != nil {
		t.Fatalf("expected the killed daemon's socket file to remain: %v", err)
	}
	d = proctest.StartDaemon(t, dir, proctest.DaemonOptions{})
	d.Logger(t, nil, "after crash")
	d.Stop(t)
	if recs := proctest.ReadRing(t, d.Ring); len(recs) != 1 || string(recs[0].Message) != "after crash" {
		t.Fatalf("ring after crash restart: %+v", recs)
	}

	if err := os.WriteFile(d.Socket, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(proctest.Collectord(t), "--socket", d.Socket, "--ring", d.Ring, "--ring-size", "1MiB", "--query-addr", "", "--query-socket", "", "--metrics-addr", "")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a socket") {
		t.Fatalf("daemon on a regular file: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(d.Socket); string(b) != "precious" {
		t.Fatal("the regular file was modified")
	}
}

// TestSecondDaemonRefused: a second daemon on the same ring fails with a
// clear message instead of corrupting it.
func TestSecondDaemonRefused(t *testing.T) {
	dir := t.TempDir()
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{})
	cmd := exec.Command(proctest.Collectord(t), "--socket", filepath.Join(dir, "other.sock"), "--ring", d.Ring, "--query-addr", "", "--query-socket", "", "--metrics-addr", "")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "locked by another writer") {
		t.Fatalf("second daemon: %v\n%s", err, out)
	}
	d.Stop(t)
}

func TestBadConfigExit2(t *testing.T) {
	out, err := exec.Command(proctest.Collectord(t), "--ring-size", "3MiB").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "ring_size 3MiB") {
		t.Fatalf("bad ring size: %v\n%s", err, out)
	}
}
