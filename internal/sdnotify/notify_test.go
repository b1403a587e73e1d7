//go:build linux

package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
)

// notifySocket is a stand-in for systemd's notification socket.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
}

// listenNotify binds a datagram socket at addr (a path, or an abstract name
// starting with '@'), points NOTIFY_SOCKET at it, and closes it when the
// test ends.
func listenNotify(t *testing.T, addr string) *notifySocket {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", addr)
	return &notifySocket{t: t, conn: conn}
}

// listenNotifyPath binds the stand-in at a path in a temporary directory.
func listenNotifyPath(t *testing.T) *notifySocket {
	t.Helper()
	return listenNotify(t, filepath.Join(t.TempDir(), "notify"))
}

// recv reads one datagram, returning its payload and any descriptors it
// carried (closed when the test ends).
func (s *notifySocket) recv() (string, []int) {
	s.t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		s.t.Fatal(err)
	}
	buf := make([]byte, MaxMessage+1)
	oob := make([]byte, unix.CmsgSpace(4*MaxFDs))
	n, oobn, flags, _, err := s.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		s.t.Fatalf("receive notification: %v", err)
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		s.t.Fatalf("notification truncated (flags %#x)", flags)
	}
	var fds []int
	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		s.t.Fatalf("parse control messages: %v", err)
	}
	for _, c := range cmsgs {
		rights, err := unix.ParseUnixRights(&c)
		if err != nil {
			s.t.Fatalf("parse SCM_RIGHTS: %v", err)
		}
		fds = append(fds, rights...)
	}
	s.t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	return string(buf[:n]), fds
}

// expect reads one datagram and requires its payload to be want, with no
// descriptors.
func (s *notifySocket) expect(want string) {
	s.t.Helper()
	got, fds := s.recv()
	if got != want {
		s.t.Errorf("notification = %q, want %q", got, want)
	}
	if len(fds) != 0 {
		s.t.Errorf("notification %q carried %d descriptors, want none", got, len(fds))
	}
}

// expectEmpty requires that no datagram is queued.
func (s *notifySocket) expectEmpty() {
	s.t.Helper()
	rc, err := s.conn.SyscallConn()
	if err != nil {
		s.t.Fatal(err)
	}
	var n int
	var rerr error
	buf := make([]byte, MaxMessage)
	if err := rc.Control(func(fd uintptr) {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
	}); err != nil {
		s.t.Fatal(err)
	}
	if rerr == nil {
		s.t.Errorf("unexpected notification %q", buf[:n])
	} else if !errors.Is(rerr, unix.EAGAIN) {
		s.t.Errorf("recv: %v", rerr)
	}
}

func TestHelpersSendExactMessages(t *testing.T) {
	s := listenNotifyPath(t)
	n := New()
	if !n.Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	for _, tc := range []struct {
		name string
		send func() error
		want string
	}{
		{"Ready", func() error { return n.Ready("") }, "READY=1"},
		{"ReadyStatus", func() error { return n.Ready("serving /run/collector.sock") }, "READY=1\nSTATUS=serving /run/collector.sock"},
		{"Stopping", n.Stopping, "STOPPING=1"},
		{"Status", func() error { return n.Status("draining 3 clients") }, "STATUS=draining 3 clients"},
		{"MainPID", func() error { return n.MainPID(4242) }, "MAINPID=4242"},
		{"ExtendTimeout", func() error { return n.ExtendTimeout(1500 * time.Millisecond) }, "EXTEND_TIMEOUT_USEC=1500000"},
		{"RemoveFDs", func() error { return n.RemoveFDs("ring") }, "FDSTOREREMOVE=1\nFDNAME=ring"},
		{"Notify", func() error { return n.Notify("WATCHDOG=1") }, "WATCHDOG=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.send(); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			s.expect(tc.want)
		})
	}
}

func TestAbstractNamespace(t *testing.T) {
	s := listenNotify(t, fmt.Sprintf("@collectord-sdnotify-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := New().Ready("abstract"); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	s.expect("READY=1\nSTATUS=abstract")
}

func TestReloadingCarriesMonotonicTime(t *testing.T) {
	s := listenNotifyPath(t)
	before, err := monotonicUsec()
	if err != nil {
		t.Fatal(err)
	}
	if err := New().Reloading(); err != nil {
		t.Fatalf("Reloading: %v", err)
	}
	after, err := monotonicUsec()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := s.recv()
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("notification = %q, want RELOADING=1\\nMONOTONIC_USEC=<n>", got)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC: %v", err)
	}
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC=%d, want within [%d, %d] (CLOCK_MONOTONIC around the call)", usec, before, after)
	}
}

// checkPassedPipe writes through fd, which should be a duplicate of w, and
// reads the bytes back from r.
func checkPassedPipe(t *testing.T, fd int, r *os.File, msg string) {
	t.Helper()
	if _, err := unix.Write(fd, []byte(msg)); err != nil {
		t.Fatalf("write through received fd %d: %v", fd, err)
	}
	buf := make([]byte, len(msg))
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(buf); err != nil {
		t.Fatalf("read pipe: %v", err)
	}
	if string(buf) != msg {
		t.Errorf("pipe carried %q, want %q", buf, msg)
	}
}

func newPipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestNotifyPassesRealDescriptors(t *testing.T) {
	s := listenNotifyPath(t)
	r1, w1 := newPipe(t)
	r2, w2 := newPipe(t)
	if err := New().Notify("FDSTORE=1\nFDNAME=pipes\nFDPOLL=0", intFD(t, w1), intFD(t, w2)); err != nil {
		t.Fatalf("Notify: %v", err)
	}
	got, fds := s.recv()
	if want := "FDSTORE=1\nFDNAME=pipes\nFDPOLL=0"; got != want {
		t.Errorf("notification = %q, want %q", got, want)
	}
	if len(fds) != 2 {
		t.Fatalf("received %d descriptors, want 2", len(fds))
	}
	checkPassedPipe(t, fds[0], r1, "first")
	checkPassedPipe(t, fds[1], r2, "second")
	// The sender's descriptors stay open and usable.
	if _, err := w1.Write([]byte("x")); err != nil {
		t.Errorf("write to the sender's own pipe after Notify: %v", err)
	}
}

func TestStoreFDsKeepsSocketsNonBlocking(t *testing.T) {
	s := listenNotifyPath(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r, w := newPipe(t)
	before := proctest.OpenFDs(t)
	if err := New().StoreFDs("query", ln.(*net.TCPListener), w); err != nil {
		t.Fatalf("StoreFDs: %v", err)
	}
	got, fds := s.recv()
	// The receiver is this process: exactly the two received descriptors
	// are new; StoreFDs closed its duplicates.
	if after := proctest.OpenFDs(t); after != before+len(fds) {
		t.Errorf("open descriptors: %d before, %d after receiving %d: StoreFDs leaked %d",
			before, after, len(fds), after-before-len(fds))
	}
	if want := "FDSTORE=1\nFDNAME=query"; got != want {
		t.Errorf("notification = %q, want %q", got, want)
	}
	if len(fds) != 2 {
		t.Fatalf("received %d descriptors, want 2", len(fds))
	}
	// The first is the listener itself: same socket, same port.
	sa, err := unix.Getsockname(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	if port := sa.(*unix.SockaddrInet4).Port; port != ln.Addr().(*net.TCPAddr).Port {
		t.Errorf("received listener bound to port %d, want %d", port, ln.Addr().(*net.TCPAddr).Port)
	}
	checkPassedPipe(t, fds[1], r, "stored")
	// os.File.Fd would have switched the listener to blocking mode.
	fl, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl&unix.O_NONBLOCK == 0 {
		t.Error("StoreFDs cleared O_NONBLOCK on the listener")
	}
	if err := New().StoreFDs("query"); !errors.Is(err, ErrInvalid) {
		t.Errorf("StoreFDs without descriptors: err = %v, want ErrInvalid", err)
	}
}

// intFD returns the descriptor behind f without os.File.Fd.
func intFD(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestDisabledDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	for name, n := range map[string]*Notifier{"New": New(), "nil": nil, "zero": {}} {
		t.Run(name, func(t *testing.T) {
			if n.Enabled() {
				t.Error("Enabled() = true")
			}
			_, w := newPipe(t)
			for _, err := range []error{
				n.Ready("x"), n.Reloading(), n.Stopping(), n.Status("x"), n.MainPID(1),
				n.ExtendTimeout(time.Second), n.StoreFDs("x", w), n.RemoveFDs("x"),
				n.Notify("WATCHDOG=1"),
			} {
				if err != nil {
					t.Errorf("disabled notifier returned %v", err)
				}
			}
		})
	}
}

func TestInvalidArguments(t *testing.T) {
	s := listenNotifyPath(t)
	n := New()
	_, w := newPipe(t)
	wfd := intFD(t, w)
	tooMany := make([]int, MaxFDs+1)
	for i := range tooMany {
		tooMany[i] = wfd
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"empty state", n.Notify("")},
		{"too long", n.Notify("STATUS=" + strings.Repeat("x", MaxMessage))},
		{"too many fds", n.Notify("FDSTORE=1", tooMany...)},
		{"status newline", n.Status("ok\nREADY=1")},
		{"ready status newline", n.Ready("ok\nMAINPID=1")},
		{"status NUL", n.Status("a\x00b")},
		{"mainpid zero", n.MainPID(0)},
		{"extend zero", n.ExtendTimeout(time.Nanosecond)},
		{"fdname empty", n.StoreFDs("", w)},
		{"fdname colon", n.StoreFDs("a:b", w)},
		{"fdname control", n.RemoveFDs("a\tb")},
		{"fdname long", n.RemoveFDs(strings.Repeat("a", 256))},
	} {
		if !errors.Is(tc.err, ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, tc.err)
		}
	}
	// Nothing reached the socket.
	s.expectEmpty()
	// The longest accepted message and name do go through.
	if err := n.RemoveFDs(strings.Repeat("a", 255)); err != nil {
		t.Errorf("RemoveFDs with a 255-character name: %v", err)
	}
	s.expect("FDSTOREREMOVE=1\nFDNAME=" + strings.Repeat("a", 255))
	long := "STATUS=" + strings.Repeat("x", MaxMessage-len("STATUS="))
	if err := n.Notify(long); err != nil {
		t.Errorf("Notify with a %d-byte message: %v", len(long), err)
	}
	s.expect(long)
}

func TestUnsupportedAddress(t *testing.T) {
	for _, addr := range []string{"vsock:2:1234", "relative/path", "@", "/"} {
		t.Setenv("NOTIFY_SOCKET", addr)
		n := New()
		if !n.Enabled() {
			t.Errorf("NOTIFY_SOCKET=%q: Enabled() = false, want true (systemd asked for notifications)", addr)
		}
		if err := n.Ready(""); !errors.Is(err, ErrUnsupportedAddress) {
			t.Errorf("NOTIFY_SOCKET=%q: Ready: err = %v, want ErrUnsupportedAddress", addr, err)
		}
	}
}

func TestNoListenerIsAnError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if err := New().Ready(""); !errors.Is(err, unix.ENOENT) {
		t.Errorf("Ready to a missing socket: err = %v, want ENOENT", err)
	}
}

func TestNewReadsEnvironmentOnce(t *testing.T) {
	s := listenNotifyPath(t)
	n := New()
	// The daemon may unset the variable for its other children; the
	// Notifier keeps working, and New does not unset it itself.
	if os.Getenv("NOTIFY_SOCKET") == "" {
		t.Fatal("New unset NOTIFY_SOCKET")
	}
	os.Unsetenv("NOTIFY_SOCKET")
	if err := n.Stopping(); err != nil {
		t.Fatalf("Stopping after unsetenv: %v", err)
	}
	s.expect("STOPPING=1")
}

// TestMatchesSystemdNotify compares our payloads with those of systemd's
// own client, when it is installed.
func TestMatchesSystemdNotify(t *testing.T) {
	bin := proctest.NeedTool(t, "systemd-notify")
	s := listenNotifyPath(t)
	n := New()
	for _, tc := range []struct {
		args []string
		send func() error
	}{
		{[]string{"--ready", "--status=serving 3 sockets"}, func() error { return n.Ready("serving 3 sockets") }},
		{[]string{"--pid=4242"}, func() error { return n.MainPID(4242) }},
		{[]string{"--status=draining"}, func() error { return n.Status("draining") }},
		{[]string{"STOPPING=1"}, n.Stopping},
	} {
		// --no-block: no BARRIER=1 round trip, which needs a real manager.
		out, err := exec.Command(bin, append([]string{"--no-block"}, tc.args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("systemd-notify %v: %v\n%s", tc.args, err, out)
		}
		theirs, _ := s.recv()
		if err := tc.send(); err != nil {
			t.Fatal(err)
		}
		ours, _ := s.recv()
		if ours != theirs {
			t.Errorf("systemd-notify %v sent %q, we sent %q", tc.args, theirs, ours)
		}
	}
}
