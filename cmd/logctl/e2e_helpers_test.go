//go:build linux

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/shmring"
)

// The end-to-end tests run what users run: the collectord daemon and the
// logctl binary, both built once (with the race detector) by TestMain, on
// real sockets and ring files in temporary directories.
var daemonBin, logctlBin string

// nobody is the unprivileged uid/gid the tests run senders and logctl as
// when they run as root.
const nobody = 65534

// e2eTimeout bounds every wait on a child process in these tests.
const e2eTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "logctl-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// uid 65534 runs logctl from here in the permission tests.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	daemonBin = filepath.Join(dir, "collectord")
	logctlBin = filepath.Join(dir, "logctl")
	for bin, pkg := range map[string]string{daemonBin: "../collectord", logctlBin: "."} {
		out, err := exec.Command("go", "build", "-race", "-o", bin, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	// The race runtime otherwise sleeps a second at exit (and exits 66 on a
	// race, which the tests see as a failure).
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	// Short output shows local time; pin it so that runs compare.
	os.Setenv("TZ", "UTC")
	os.Unsetenv("NO_COLOR")
	return m.Run()
}

// openDir returns t.TempDir() made traversable by other users, so that a
// sender or logctl running as nobody reaches the socket and the ring.
func openDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir() // TMPDIR/TestNameNNN/NNN, both 0700
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// lineBuffer collects a child's output; waiters are woken on every write.
type lineBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed (and replaced) by every write
}

func (s *lineBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Write(p)
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return len(p), nil
}

func (s *lineBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// snapshot returns the text so far and a channel closed at the next write.
func (s *lineBuffer) snapshot() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.b.String(), s.changed
}

// daemon is a running collectord.
type daemon struct {
	socket, ring string
	addr         string // the query server's address, as it logged it
	cmd          *exec.Cmd
	logs         *lineBuffer
	done         chan struct{} // closed when the process has exited
	err          error         // its exit status, once done is closed
}

// daemonConfig says how to start collectord; zero values mean a 1MiB ring,
// a query server on a free loopback port and log level info.
type daemonConfig struct {
	ringSize string
	addr     string
	noQuery  bool     // no query server at all
	metrics  string   // metrics server address; "" for none
	env      []string // added to the daemon's environment
	logLevel string   // debug logs each query connection
	ring     string   // ring path; "" for "ring" in the daemon's directory
	args     []string // more flags
}

// startDaemon runs collectord with its socket and ring in dir and waits
// until it logs that it is ready. The test's cleanup kills it if the test
// did not stop it.
func startDaemon(t *testing.T, dir string, cfg daemonConfig) *daemon {
	t.Helper()
	if cfg.ringSize == "" {
		cfg.ringSize = "1MiB"
	}
	if cfg.addr == "" && !cfg.noQuery {
		cfg.addr = "127.0.0.1:0"
	}
	if cfg.logLevel == "" {
		cfg.logLevel = "info"
	}
	d := &daemon{
		socket: filepath.Join(dir, "c.sock"),
		ring:   cmp.Or(cfg.ring, filepath.Join(dir, "ring")),
		logs:   new(lineBuffer),
		done:   make(chan struct{}),
	}
	d.cmd = exec.Command(daemonBin, "--socket", d.socket, "--ring", d.ring, "--ring-size", cfg.ringSize,
		"--query-addr", cfg.addr, "--metrics-addr", cfg.metrics, "--log-level", cfg.logLevel)
	d.cmd.Args = append(d.cmd.Args, cfg.args...)
	if cfg.env != nil {
		d.cmd.Env = append(os.Environ(), cfg.env...)
	}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		sent := false
		for lines.Scan() {
			d.logs.Write(append(lines.Bytes(), '\n'))
			var l struct {
				Msg       string `json:"msg"`
				QueryAddr string `json:"query_addr"`
			}
			if !sent && json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "collectord ready" {
				ready <- l.QueryAddr
				sent = true
			}
		}
		if !sent {
			close(ready)
		}
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
	})
	select {
	case addr, ok := <-ready:
		if !ok || (addr == "") != cfg.noQuery {
			<-d.done
			t.Fatalf("collectord did not become ready (%v):\n%s", d.err, d.logs)
		}
		d.addr = addr
	case <-time.After(e2eTimeout):
		t.Fatalf("collectord not ready after %v:\n%s", e2eTimeout, d.logs)
	}
	return d
}

// stop sends SIGTERM and requires a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if d.err != nil {
			t.Fatalf("collectord exited with %v:\n%s", d.err, d.logs)
		}
	case <-time.After(e2eTimeout):
		t.Fatalf("collectord did not exit within %v of SIGTERM:\n%s", e2eTimeout, d.logs)
	}
}

// dialSocket connects a datagram socket to the daemon, as one client
// process does. Writes block while the daemon's queue is full.
func dialSocket(t *testing.T, path string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// ringState reports the ring's head and oldest record.
func ringState(t *testing.T, ring string) (oldest, head uint64) {
	t.Helper()
	r, err := shmring.OpenReader(ring)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st := r.Stats()
	return st.Oldest, st.Head
}

// waitHead waits (on the ring's futex) until the record before head is
// published, and returns the ring's state then.
func waitHead(t *testing.T, ring string, head uint64) (oldest, newHead uint64) {
	t.Helper()
	r, err := shmring.OpenReader(ring)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	if head > shmring.FirstSeq {
		if err := r.Wait(ctx, head-1); err != nil {
			t.Fatalf("ring head %d, waiting for %d: %v", r.Head(), head, err)
		}
	}
	st := r.Stats()
	return st.Oldest, st.Head
}

// send writes each message as one datagram on a new socket and waits until
// the daemon has stored them all. It returns the sequence number of the
// first. Nobody else may send meanwhile.
func (d *daemon) send(t *testing.T, msgs ...string) uint64 {
	t.Helper()
	_, head := ringState(t, d.ring)
	c := dialSocket(t, d.socket)
	for _, m := range msgs {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	waitHead(t, d.ring, head+uint64(len(msgs)))
	return head
}

// logger runs util-linux logger against the daemon, as cred if not nil,
// waits until its record is stored and returns its pid and seq.
func (d *daemon) logger(t *testing.T, cred *syscall.Credential, args ...string) (pid int, seq uint64) {
	t.Helper()
	if _, err := exec.LookPath("logger"); err != nil {
		t.Skip("util-linux logger not installed")
	}
	_, head := ringState(t, d.ring)
	cmd := exec.Command("logger", append([]string{"-u", d.socket}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger %q: %v %s", args, err, out)
	}
	waitHead(t, d.ring, head+1)
	return cmd.Process.Pid, head
}

// result is how a logctl run ended.
type result struct {
	stdout, stderr string
	code           int
}

// logctl runs the logctl binary and returns its output and exit status.
func logctl(t *testing.T, args ...string) result {
	t.Helper()
	return logctlAs(t, nil, args...)
}

// logctlAs runs logctl with the given credentials (nil: ours).
func logctlAs(t *testing.T, cred *syscall.Credential, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, logctlBin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		res.code = ee.ExitCode()
	default:
		t.Fatalf("logctl %q: %v\nstderr: %s", args, err, stderr.String())
	}
	return res
}

// ok runs logctl and requires exit status 0 and nothing on stderr.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	r := logctl(t, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("logctl %q: exit %d\nstderr: %s", args, r.code, r.stderr)
	}
	return r.stdout
}

// jsonRecord is one line of `logctl tail -o json`.
type jsonRecord struct {
	Seq       uint64            `json:"seq"`
	Time      string            `json:"time"`
	Priority  int               `json:"priority"`
	Facility  int               `json:"facility"`
	PID       *uint32           `json:"pid"`
	UID       *uint32           `json:"uid"`
	GID       *uint32           `json:"gid"`
	Tag       string            `json:"tag"`
	Message   string            `json:"message"`
	Fields    map[string]string `json:"fields"`
	Truncated bool              `json:"truncated"`
}

// parseJSON parses the output of `tail -o json`; a "-- cursor: N" last line
// (from --show-cursor) is returned as cursor, -1 if there is none.
func parseJSON(t *testing.T, out string) (recs []jsonRecord, cursor int64) {
	t.Helper()
	cursor = -1
	for line := range strings.Lines(out) {
		if c, ok := strings.CutPrefix(line, "-- cursor: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(c), 10, 64)
			if err != nil {
				t.Fatalf("bad cursor line %q", line)
			}
			cursor = n
			continue
		}
		if cursor >= 0 {
			t.Fatalf("output after the cursor line: %q", line)
		}
		var r jsonRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON record: %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs, cursor
}

// seqs lists the records' sequence numbers.
func seqs(recs []jsonRecord) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

// seqRange returns from, from+1, ..., to-1.
func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s < to; s++ {
		out = append(out, s)
	}
	return out
}

// follower is a running logctl whose output the test reads as it comes,
// normally `tail -f`.
type follower struct {
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at EOF
	stderr *lineBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done is closed
}

// startFollower runs logctl with args (which should include -f) and
// streams its stdout lines. The test's cleanup kills it if still running.
func startFollower(t *testing.T, args ...string) *follower {
	t.Helper()
	f := &follower{lines: make(chan string, 4096), stderr: new(lineBuffer), done: make(chan struct{})}
	f.cmd = exec.Command(logctlBin, args...)
	f.cmd.Stderr = f.stderr
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
		f.err = f.cmd.Wait()
		close(f.done)
	}()
	t.Cleanup(func() {
		f.cmd.Process.Kill() // fails harmlessly if it has exited
		for range f.lines {
		}
		<-f.done
	})
	return f
}

// next returns the follower's next stdout line, failing the test after
// timeout or if logctl exits.
func (f *follower) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-f.lines:
		if !ok {
			t.Fatalf("logctl exited early: stderr:\n%s", f.stderr)
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("no output from logctl within %v; stderr:\n%s", timeout, f.stderr)
	}
	return ""
}

// nextJSON returns the next line as a JSON record.
func (f *follower) nextJSON(t *testing.T) jsonRecord {
	t.Helper()
	line := f.next(t, e2eTimeout)
	var r jsonRecord
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("follower printed %q: %v", line, err)
	}
	return r
}

// waitLive makes sure a `tail -f -n 0 -o json` follower is streaming: it
// sends numbered marker records until one is printed, then reads up to the
// last marker sent. It returns that marker's sequence number: every record
// stored after it will reach the follower.
func (f *follower) waitLive(t *testing.T, d *daemon) uint64 {
	t.Helper()
	c := dialSocket(t, d.socket)
	deadline := time.Now().Add(e2eTimeout)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("follower never printed a marker; stderr:\n%s", f.stderr)
		}
		last := fmt.Sprintf("live-marker-%d", i)
		if _, err := c.Write([]byte("<13>marker: " + last)); err != nil {
			t.Fatal(err)
		}
		// A follower that is not streaming yet prints nothing: try the
		// next marker after a while. Once one is printed, every later
		// marker is printed too; read up to the last.
		select {
		case line, ok := <-f.lines:
			if !ok {
				t.Fatalf("logctl exited early: stderr:\n%s", f.stderr)
			}
			for {
				var r jsonRecord
				if err := json.Unmarshal([]byte(line), &r); err != nil || !strings.HasPrefix(r.Message, "live-marker-") {
					t.Fatalf("follower printed %q before any marker", line)
				}
				if r.Message == last {
					return r.Seq
				}
				line = f.next(t, e2eTimeout)
			}
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop interrupts the follower as a user would (SIGINT) and requires exit
// status 0. It returns the rest of its stdout.
func (f *follower) stop(t *testing.T) []string {
	t.Helper()
	f.cmd.Process.Signal(syscall.SIGINT)
	var rest []string
	timeout := time.After(e2eTimeout)
	for {
		select {
		case l, ok := <-f.lines:
			if ok {
				rest = append(rest, l)
				continue
			}
			<-f.done
			if f.err != nil {
				t.Fatalf("logctl -f exited with %v; stderr:\n%s", f.err, f.stderr)
			}
			return rest
		case <-timeout:
			t.Fatalf("logctl -f did not exit within %v of SIGINT", e2eTimeout)
		}
	}
}

// wait waits for logctl to exit by itself and returns the rest of its
// stdout and its exit status.
func (f *follower) wait(t *testing.T) (rest []string, code int) {
	t.Helper()
	timeout := time.After(e2eTimeout)
	for {
		select {
		case l, ok := <-f.lines:
			if ok {
				rest = append(rest, l)
				continue
			}
			<-f.done
			var ee *exec.ExitError
			if errors.As(f.err, &ee) && ee.Exited() {
				return rest, ee.ExitCode()
			} else if f.err != nil {
				t.Fatalf("logctl: %v", f.err)
			}
			return rest, 0
		case <-timeout:
			t.Fatalf("logctl did not exit within %v; stderr:\n%s", e2eTimeout, f.stderr)
		}
	}
}

// freePort returns a loopback address nothing listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// asNobody returns credentials of uid/gid 65534 when the test runs as root,
// nil otherwise.
func asNobody() *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: nobody, Gid: nobody}
}
