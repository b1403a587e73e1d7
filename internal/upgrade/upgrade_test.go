//go:build linux

package upgrade

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
)

// oldProcess is the test playing the old daemon: a bound datagram socket,
// a TCP listener, and a client socket sending datagrams to it.
type oldProcess struct {
	t      *testing.T
	dgram  *net.UnixConn
	ln     *net.TCPListener
	sender int // connected, blocking
}

func newOldProcess(t *testing.T) *oldProcess {
	t.Helper()
	path := filepath.Join(t.TempDir(), "collector.sock")
	dgram, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dgram.Close() })
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	sender, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sender) })
	if err := unix.Connect(sender, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	return &oldProcess{t: t, dgram: dgram, ln: ln, sender: sender}
}

func (p *oldProcess) files() []NamedFile {
	return []NamedFile{{Name: "dgram", File: p.dgram}, {Name: "tcp", File: p.ln}}
}

// send sends one datagram, waiting for queue space if needed.
func (p *oldProcess) send(msg string) {
	p.t.Helper()
	if err := unix.Send(p.sender, []byte(msg), 0); err != nil {
		p.t.Fatalf("send %q: %v", msg, err)
	}
}

// read reads one datagram the way the daemon does: in the netpoller, with
// a deadline, which only works while the socket is non-blocking.
func (p *oldProcess) read() string {
	p.t.Helper()
	p.dgram.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1024)
	n, err := p.dgram.Read(buf)
	if err != nil {
		p.t.Fatalf("old process reads its socket: %v", err)
	}
	return string(buf[:n])
}

// checkServes proves the old process can go on: its sockets are still
// non-blocking, its datagram socket delivers to it, and its listener
// accepts.
func (p *oldProcess) checkServes() {
	p.t.Helper()
	p.checkNonBlocking()
	p.send("still here")
	if got := p.read(); got != "still here" {
		p.t.Errorf("old process read %q, want %q", got, "still here")
	}
	client, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		p.t.Fatalf("dial old process: %v", err)
	}
	defer client.Close()
	p.ln.SetDeadline(time.Now().Add(10 * time.Second))
	c, err := p.ln.Accept()
	if err != nil {
		p.t.Fatalf("old process accepts: %v", err)
	}
	c.Close()
}

func (p *oldProcess) checkNonBlocking() {
	p.t.Helper()
	if statusFlags(p.dgram)&unix.O_NONBLOCK == 0 {
		p.t.Error("the datagram socket was switched to blocking mode")
	}
	if statusFlags(p.ln)&unix.O_NONBLOCK == 0 {
		p.t.Error("the TCP listener was switched to blocking mode")
	}
}

// startForTest starts this test binary as the new process in role; it is
// aborted when the test ends.
func startForTest(t *testing.T, role string, files []NamedFile) *Child {
	t.Helper()
	// Start runs the command's path with its arguments and environment.
	child := proctest.ChildCommand(context.Background(), "new-process", role)
	c, err := Start(child.Path, child.Args, child.Env, files)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(c.Abort)
	return c
}

func ctxForTest(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitExit reaps pid, a child that Released let go of, and returns its
// wait status.
func waitExit(t *testing.T, pid int) unix.WaitStatus {
	t.Helper()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("wait for %d: %v", pid, err)
		}
		return ws
	}
}

func TestHandoverKeepsSocketsAndLosesNothing(t *testing.T) {
	old := newOldProcess(t)
	ctx := ctxForTest(t)

	// Before the upgrade the old process serves.
	for i := range 3 {
		old.send(fmt.Sprintf("before-%d", i))
	}
	for i := range 3 {
		if got, want := old.read(), fmt.Sprintf("before-%d", i); got != want {
			t.Fatalf("old process read %q, want %q", got, want)
		}
	}

	proctest.CheckNoFDLeak(t)
	c := startForTest(t, "serve", old.files())
	reaped := false
	t.Cleanup(func() {
		if !reaped { // the test failed after the handover
			unix.Kill(c.PID(), unix.SIGKILL)
			waitExit(t, c.PID())
		}
	})
	old.checkNonBlocking()
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}

	// The old process stops reading. In the window, fill the socket
	// queue: every datagram the kernel accepts must reach the new process.
	var want []string
	for i := 0; ; i++ {
		msg := fmt.Sprintf("window-%d", i)
		err := unix.Sendto(old.sender, []byte(msg), unix.MSG_DONTWAIT, nil)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatalf("send %q: %v", msg, err)
		}
		want = append(want, msg)
		if i == 1<<16 {
			t.Fatal("the socket queue never filled up")
		}
	}
	if len(want) == 0 {
		t.Fatal("no datagram fitted in the queue")
	}
	t.Logf("%d datagrams queued during the handover window", len(want))
	// A client connecting in the window waits in the shared backlog.
	client, err := net.Dial("tcp", old.ln.Addr().String())
	if err != nil {
		t.Fatalf("dial during the handover: %v", err)
	}
	defer client.Close()

	if err := c.Released(ctx); err != nil {
		t.Fatalf("Released: %v", err)
	}
	c.Abort() // does nothing once the new process runs
	old.checkNonBlocking()

	// The new process reads now; the old one still has its copies open
	// but does not read.
	for i := range 20 {
		msg := fmt.Sprintf("after-%d", i)
		old.send(msg)
		want = append(want, msg)
	}
	old.send("end")

	client.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got []string
	fields := map[string]string{}
	sc := bufio.NewScanner(client)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		if k == "msg" {
			got = append(got, v)
		} else {
			fields[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read report: %v", err)
	}
	if fields["pid"] != strconv.Itoa(c.PID()) {
		t.Errorf("connection accepted by pid %q, want the new process %d", fields["pid"], c.PID())
	}
	if fields["names"] != "dgram,tcp" {
		t.Errorf("new process got files %q, want dgram,tcp", fields["names"])
	}
	if fields["nonblock+cloexec"] != "dgram,tcp" {
		t.Errorf("files non-blocking and close-on-exec in the new process: %q, want dgram,tcp", fields["nonblock+cloexec"])
	}
	if fields["env"] != "clean" {
		t.Errorf("COLLECTORD_UPGRADE* variables after Inherited: %s", fields["env"])
	}
	if !slices.Equal(got, want) {
		t.Errorf("new process read %d datagrams:\n%q\nwant %d:\n%q", len(got), got, len(want), want)
	}

	ws := waitExit(t, c.PID())
	reaped = true
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("new process ended with wait status %#x, want exit 0", uint32(ws))
	}
}

func TestChildExitsBeforeReady(t *testing.T) {
	old := newOldProcess(t)
	c := startForTest(t, "exit", old.files())
	err := c.WaitReady(ctxForTest(t))
	if !errors.Is(err, ErrChildExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("WaitReady: err = %v, want ErrChildExited with exit status 3", err)
	}
	old.checkServes()
	if err := c.Released(ctxForTest(t)); !errors.Is(err, ErrAborted) {
		t.Errorf("Released after a failed WaitReady: err = %v, want ErrAborted", err)
	}
}

func TestChildExitsAfterReady(t *testing.T) {
	old := newOldProcess(t)
	c := startForTest(t, "exit-after-ready", old.files())
	ctx := ctxForTest(t)
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	err := c.Released(ctx)
	if !errors.Is(err, ErrChildExited) || !strings.Contains(err.Error(), "exit status 5") {
		t.Fatalf("Released: err = %v, want ErrChildExited with exit status 5", err)
	}
	old.checkServes()
}

func TestChildFailsBeforeReady(t *testing.T) {
	old := newOldProcess(t)
	proctest.CheckNoFDLeak(t)
	c := startForTest(t, "fail-ready", old.files())
	err := c.WaitReady(ctxForTest(t))
	var fe *FailedError
	if !errors.As(err, &fe) || fe.Reason != "no ring for you" || fe.PID != c.PID() {
		t.Fatalf("WaitReady: err = %v, want FailedError{PID: %d, Reason: %q}", err, c.PID(), "no ring for you")
	}
	old.checkServes()
}

func TestChildFailsAfterReleased(t *testing.T) {
	old := newOldProcess(t)
	c := startForTest(t, "fail-released", old.files())
	ctx := ctxForTest(t)
	if err := c.Released(ctx); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Released before WaitReady: err = %v, want ErrOutOfOrder", err)
	}
	if err := c.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	if err := c.WaitReady(ctx); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("WaitReady twice: err = %v, want ErrOutOfOrder", err)
	}
	// The old process has stopped reading; datagrams queue meanwhile.
	old.send("queued")
	err := c.Released(ctx)
	var fe *FailedError
	if !errors.As(err, &fe) || fe.Reason != "cannot lock ring: boom" {
		t.Fatalf("Released: err = %v, want FailedError with the child's reason", err)
	}
	if c.exit == "" {
		t.Error("Released returned before the child was reaped")
	}
	// The old process resumes and nothing was lost.
	if got := old.read(); got != "queued" {
		t.Errorf("old process read %q after resuming, want %q", got, "queued")
	}
	old.checkServes()
}

func TestWaitReadyTimeoutKillsChild(t *testing.T) {
	old := newOldProcess(t)
	c := startForTest(t, "hang-ready", old.files())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.WaitReady(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("WaitReady: err = %v, want DeadlineExceeded after killing the child", err)
	}
	old.checkServes()
}

func TestReleasedTimeoutKillsChild(t *testing.T) {
	old := newOldProcess(t)
	c := startForTest(t, "hang-released", old.files())
	if err := c.WaitReady(ctxForTest(t)); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := c.Released(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "signal: killed") {
		t.Fatalf("Released: err = %v, want DeadlineExceeded after killing the child", err)
	}
	old.checkServes()
}

func TestUnexpectedMessage(t *testing.T) {
	old := newOldProcess(t)
	c := startForTest(t, "garbage", old.files())
	err := c.WaitReady(ctxForTest(t))
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), `"hello"`) {
		t.Fatalf("WaitReady: err = %v, want ErrProtocol naming the message", err)
	}
}

func TestUnsupportedVersionIsReported(t *testing.T) {
	old := newOldProcess(t)
	c := startForTest(t, "future", old.files())
	err := c.WaitReady(ctxForTest(t))
	var fe *FailedError
	if !errors.As(err, &fe) || !strings.Contains(fe.Reason, `unsupported upgrade protocol version "99"`) {
		t.Fatalf("WaitReady: err = %v, want FailedError about the version", err)
	}
}

func TestAbortStopsWaitReady(t *testing.T) {
	old := newOldProcess(t)
	c := startForTest(t, "hang-ready", old.files())
	ctx := ctxForTest(t)
	done := make(chan error, 1)
	go func() { done <- c.WaitReady(ctx) }()
	c.Abort()
	c.Abort()
	if err := <-done; !errors.Is(err, ErrAborted) {
		t.Errorf("WaitReady during Abort: err = %v, want ErrAborted", err)
	}
	if !strings.Contains(c.exit, "signal: killed") {
		t.Errorf("child ended with %q, want signal: killed", c.exit)
	}
}

func TestStartRejectsBadFiles(t *testing.T) {
	old := newOldProcess(t)
	closed := closedConn(t)
	child := proctest.ChildCommand(context.Background(), "new-process", "exit")
	proctest.CheckNoFDLeak(t)
	for name, files := range map[string][]NamedFile{
		"empty name":     {{Name: "", File: old.dgram}},
		"colon":          {{Name: "a:b", File: old.dgram}},
		"newline":        {{Name: "a\nb", File: old.dgram}},
		"duplicate":      {{Name: "x", File: old.dgram}, {Name: "x", File: old.ln}},
		"nil file":       {{Name: "x"}},
		"closed":         {{Name: "x", File: closed}},
		"too long":       {{Name: strings.Repeat("n", 256), File: old.dgram}},
		"no such binary": nil,
	} {
		bin := child.Path
		if files == nil {
			bin = filepath.Join(t.TempDir(), "missing")
		}
		c, err := Start(bin, child.Args, child.Env, files)
		if err == nil {
			c.Abort()
			t.Errorf("%s: Start succeeded", name)
		}
	}
}

func closedConn(t *testing.T) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "c"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	return c
}

func TestWithUpgradeEnvReplacesVariables(t *testing.T) {
	got := withUpgradeEnv([]string{
		"PATH=/bin", envVersion + "=7", envPPID + "=1", envNames + "=stale", "COLLECTORD_UPGRADE_OTHER=kept",
	}, []string{"ingest", "query"})
	want := []string{
		"PATH=/bin", "COLLECTORD_UPGRADE_OTHER=kept",
		envVersion + "=1", envPPID + "=" + strconv.Itoa(os.Getpid()), envNames + "=ingest:query",
	}
	if !slices.Equal(got, want) {
		t.Errorf("withUpgradeEnv = %q, want %q", got, want)
	}
}
