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
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
)

// The end-to-end tests run what users run: the collectord daemon and the
// logctl binary, both built once by proctest, on real sockets and ring
// files in temporary directories.

// nobody is the unprivileged uid/gid the tests run senders and logctl as
// when they run as root.
const nobody = 65534

// e2eTimeout bounds every wait on a child process in these tests.
const e2eTimeout = 30 * time.Second

func TestMain(m *testing.M) {
	// Short output shows local time; pin it so that runs compare.
	os.Setenv("TZ", "UTC")
	os.Unsetenv("NO_COLOR")
	proctest.Main(m, map[string]func([]string) error{"sender": senderChild})
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

// startDaemon is proctest.StartDaemon with a query server on a free
// loopback port unless o names another address, which answers clients
// without a token or certificate with every record (--query-anonymous all,
// unless o.Args say otherwise): these tests ask it as such a client. It
// serves its local socket too, query.sock in dir unless o names another.
func startDaemon(t *testing.T, dir string, o proctest.DaemonOptions) *proctest.Daemon {
	t.Helper()
	o.QueryAddr = cmp.Or(o.QueryAddr, "127.0.0.1:0")
	o.QuerySocket = cmp.Or(o.QuerySocket, filepath.Join(dir, "query.sock"))
	o.Args = append([]string{"--query-anonymous", "all"}, o.Args...)
	return proctest.StartDaemon(t, dir, o)
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
	return logctlEnv(t, cred, nil, args...)
}

// logctlEnv is logctlAs with env added to our environment.
func logctlEnv(t *testing.T, cred *syscall.Credential, env []string, args ...string) result {
	t.Helper()
	bin := proctest.Logctl(t)
	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
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
	Comm      string            `json:"comm"`
	Exe       string            `json:"exe"`
	Unit      string            `json:"unit"`
	Slice     string            `json:"slice"`
	Cgroup    string            `json:"cgroup"`
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
	stderr *proctest.Output
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done is closed
}

// startFollower runs logctl with args (which should include -f) and
// streams its stdout lines. The test's cleanup kills it if still running.
func startFollower(t *testing.T, args ...string) *follower {
	t.Helper()
	return startFollowerAs(t, nil, args...)
}

// startFollowerAs is startFollower with the given credentials (nil: ours).
func startFollowerAs(t *testing.T, cred *syscall.Credential, args ...string) *follower {
	t.Helper()
	f := &follower{lines: make(chan string, 4096), stderr: new(proctest.Output), done: make(chan struct{})}
	f.cmd = exec.Command(proctest.Logctl(t), args...)
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
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
func (f *follower) waitLive(t *testing.T, d *proctest.Daemon) uint64 {
	t.Helper()
	c := proctest.DialDatagram(t, d.Socket)
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

// asNobody returns credentials of uid/gid 65534 when the test runs as root,
// nil otherwise.
func asNobody() *syscall.Credential {
	if os.Geteuid() != 0 {
		return nil
	}
	return &syscall.Credential{Uid: nobody, Gid: nobody}
}
