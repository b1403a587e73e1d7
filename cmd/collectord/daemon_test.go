package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// The daemon tests run the real binaries, built once: the daemon, and
// logctl as the follower that must survive restarts.
var daemonBin, logctlBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "collectord-test")
	if err != nil {
		panic(err)
	}
	daemonBin = filepath.Join(dir, "collectord")
	logctlBin = filepath.Join(dir, "logctl")
	for bin, pkg := range map[string]string{daemonBin: ".", logctlBin: "../logctl"} {
		out, err := exec.Command("go", "build", "-race", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			os.Exit(1)
		}
	}
	// The race runtime otherwise sleeps a second at exit, and exits 66 on a race.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type daemonProc struct {
	cmd    *exec.Cmd
	socket string
	ring   string
	logs   *syncBuffer
	exited chan error
}

// syncBuffer collects the daemon's log lines from its reader goroutine.
type syncBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed (and replaced) by every write
}

func (s *syncBuffer) WriteString(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(v)
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until cond holds for everything written so far and returns
// that text; after timeout it fails the test, naming what it waited for.
func (s *syncBuffer) waitFor(t *testing.T, timeout time.Duration, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		text := s.b.String()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		if cond(text) {
			return text
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; log:\n%s", timeout, what, text)
		}
	}
}

// startDaemon runs collectord on a socket and ring in dir and waits until
// it says it is ready.
func startDaemon(t *testing.T, dir string, args ...string) *daemonProc {
	t.Helper()
	return startDaemonWith(t, dir, daemonOptions{}, args...)
}

// daemonOptions change how startDaemonWith runs collectord.
type daemonOptions struct {
	env   []string // added to the test's environment
	shell string   // if set, run `sh -c shell collectord args...` (exec "$0" "$@" in it)
	files []*os.File
}

// startDaemonWith is startDaemon with extra environment, a shell wrapper
// (for variables that must name the daemon's own pid, as LISTEN_PID) and
// inherited files (fd 3, 4, ...).
func startDaemonWith(t *testing.T, dir string, o daemonOptions, args ...string) *daemonProc {
	t.Helper()
	d := &daemonProc{socket: filepath.Join(dir, "c.sock"), ring: filepath.Join(dir, "ring"), logs: new(syncBuffer), exited: make(chan error, 1)}
	args = append([]string{"--socket", d.socket, "--ring", d.ring, "--ring-size", "1MiB",
		"--query-addr", "", "--metrics-addr", ""}, args...)
	if o.shell != "" {
		d.cmd = exec.Command("sh", append([]string{"-c", o.shell, daemonBin}, args...)...)
	} else {
		d.cmd = exec.Command(daemonBin, args...)
	}
	d.cmd.Env = append(os.Environ(), o.env...)
	d.cmd.ExtraFiles = o.files
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		sent := false
		for lines.Scan() {
			d.logs.WriteString(lines.Text() + "\n")
			if !sent && strings.Contains(lines.Text(), `"collectord ready"`) {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
		d.exited <- d.cmd.Wait()
	}()
	t.Cleanup(func() { d.cmd.Process.Kill() })
	if !<-ready {
		err := <-d.exited
		t.Fatalf("collectord did not become ready: %v\n%s", err, d.logs)
	}
	return d
}

// stop sends SIGTERM and requires a clean exit before the shipped unit's
// TimeoutStopSec (10s), after which systemd would kill the daemon. (How
// fast it stops is measured by bench/upgrade, not asserted here.)
func (d *daemonProc) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("collectord exited with %v\n%s", err, d.logs)
		}
	case <-time.After(stopTimeout):
		t.Fatalf("collectord did not exit within %v of SIGTERM\n%s", stopTimeout, d.logs)
	}
}

func logger(t *testing.T, socket string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("logger"); err != nil {
		t.Skip("util-linux logger not installed")
	}
	out, err := exec.Command("logger", append([]string{"-u", socket}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("logger: %v %s", err, out)
	}
}

type stored struct {
	seq uint64
	record.Entry
}

// readRing returns every record in the ring, decoded.
func readRing(t *testing.T, path string) []stored {
	t.Helper()
	r, err := shmring.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []stored
	c := r.Cursor(0)
	for {
		rec, lost, err := c.Next()
		if errors.Is(err, shmring.ErrNoRecord) {
			return out
		}
		if err != nil || lost != 0 {
			t.Fatalf("read ring: lost %d, %v", lost, err)
		}
		var e record.Entry
		if err := record.Decode(append([]byte(nil), rec.Payload...), &e); err != nil {
			t.Fatalf("seq %d: %v", rec.Seq, err)
		}
		out = append(out, stored{rec.Seq, e})
	}
}

// stopTimeout is the shipped unit's TimeoutStopSec.
const stopTimeout = 10 * time.Second

// TestStopStartContinues: SIGTERM stops the daemon cleanly with
// everything it read published, and the next start continues the sequence.
func TestStopStartContinues(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	logger(t, d.socket, "-t", "first", "one")
	logger(t, d.socket, "-t", "first", "two")
	d.stop(t)
	if _, err := os.Stat(d.socket); !os.IsNotExist(err) {
		t.Fatalf("socket file left after a clean stop: %v", err)
	}
	d = startDaemon(t, dir)
	if !strings.Contains(d.logs.String(), `"records":2`) {
		t.Errorf("restart did not report the 2 recovered records:\n%s", d.logs)
	}
	logger(t, d.socket, "-t", "second", "three")
	d.stop(t)

	recs := readRing(t, d.ring)
	var got []string
	for i, r := range recs {
		if r.seq != shmring.FirstSeq+uint64(i) {
			t.Fatalf("record %d has seq %d", i, r.seq)
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
	d := startDaemon(t, dir)
	d.cmd.Process.Kill()
	<-d.exited
	if _, err := os.Stat(d.socket); err != nil {
		t.Fatalf("expected the killed daemon's socket file to remain: %v", err)
	}
	d = startDaemon(t, dir)
	logger(t, d.socket, "after crash")
	d.stop(t)
	if recs := readRing(t, d.ring); len(recs) != 1 || string(recs[0].Message) != "after crash" {
		t.Fatalf("ring after crash restart: %+v", recs)
	}

	if err := os.WriteFile(d.socket, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemonBin, "--socket", d.socket, "--ring", d.ring, "--ring-size", "1MiB", "--query-addr", "", "--metrics-addr", "")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a socket") {
		t.Fatalf("daemon on a regular file: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(d.socket); string(b) != "precious" {
		t.Fatal("the regular file was modified")
	}
}

// TestSecondDaemonRefused: a second daemon on the same ring fails with a
// clear message instead of corrupting it.
func TestSecondDaemonRefused(t *testing.T) {
	dir := t.TempDir()
	d := startDaemon(t, dir)
	cmd := exec.Command(daemonBin, "--socket", filepath.Join(dir, "other.sock"), "--ring", d.ring, "--query-addr", "", "--metrics-addr", "")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "locked by another writer") {
		t.Fatalf("second daemon: %v\n%s", err, out)
	}
	d.stop(t)
}

func TestBadConfigExit2(t *testing.T) {
	out, err := exec.Command(daemonBin, "--ring-size", "3MiB").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "ring_size 3MiB") {
		t.Fatalf("bad ring size: %v\n%s", err, out)
	}
}
