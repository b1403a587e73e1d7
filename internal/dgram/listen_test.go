//go:build linux

package dgram

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// bindRaw binds a socket of type typ at path and returns its fd, closed when
// the test ends unless the caller closes it first.
func bindRaw(t *testing.T, path string, typ int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatalf("bind %s: %v", path, err)
	}
	return fd
}

// checkDelivers sends one datagram to path and checks that r receives it.
func checkDelivers(t *testing.T, path string, r *Receiver) {
	t.Helper()
	c := dialForTest(t, path)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("send to %s: %v", path, err)
	}
	if got := string(receiveOne(t, r).Data); got != "ping" {
		t.Fatalf("received %q, want %q", got, "ping")
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	for _, tc := range []struct {
		name string
		typ  int
	}{
		{"unixgram", unix.SOCK_DGRAM},
		{"stream", unix.SOCK_STREAM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			unix.Close(bindRaw(t, path, tc.typ)) // the file stays: a dead daemon's leftover

			conn, err := Listen(path, ListenOptions{})
			if err != nil {
				t.Fatalf("Listen over stale socket: %v", err)
			}
			defer conn.Close()
			checkDelivers(t, path, newReceiverForTest(t, conn, ReceiverOptions{}))
		})
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(t *testing.T, path string)
	}{
		{"unixgram", func(t *testing.T, path string) {
			bindRaw(t, path, unix.SOCK_DGRAM)
		}},
		{"unixgram connected elsewhere", func(t *testing.T, path string) {
			// A connected datagram socket refuses other senders with
			// EPERM, which still means alive.
			fd := bindRaw(t, path, unix.SOCK_DGRAM)
			other := filepath.Join(filepath.Dir(path), "other")
			bindRaw(t, other, unix.SOCK_DGRAM)
			if err := unix.Connect(fd, &unix.SockaddrUnix{Name: other}); err != nil {
				t.Fatal(err)
			}
		}},
		{"stream listener", func(t *testing.T, path string) {
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			tc.serve(t, path)
			before, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}

			conn, err := Listen(path, ListenOptions{})
			if err == nil {
				conn.Close()
				t.Fatal("Listen over a live socket succeeded")
			}
			if !errors.Is(err, ErrInUse) {
				t.Errorf("Listen error = %v, want ErrInUse", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("Listen error %q does not name %s", err, path)
			}
			after, err := os.Lstat(path)
			if err != nil {
				t.Fatalf("socket file gone after refused Listen: %v", err)
			}
			if !os.SameFile(before, after) {
				t.Error("socket file was replaced")
			}
		})
	}
}

func TestListenRefusedKeepsServing(t *testing.T) {
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{})
	if c, err := Listen(path, ListenOptions{}); !errors.Is(err, ErrInUse) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("second Listen error = %v, want ErrInUse", err)
	}
	checkDelivers(t, path, r)
}

func TestListenRefusesNonSocket(t *testing.T) {
	for _, tc := range []struct {
		name   string
		create func(t *testing.T, path string)
	}{
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("precious"), 0o640); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"fifo", func(t *testing.T, path string) {
			if err := unix.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink to stale socket", func(t *testing.T, path string) {
			target := filepath.Join(filepath.Dir(path), "target")
			unix.Close(bindRaw(t, target, unix.SOCK_DGRAM))
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"dangling symlink", func(t *testing.T, path string) {
			if err := os.Symlink("nowhere", path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "s")
			tc.create(t, path)
			before := snapshot(t, dir)

			conn, err := Listen(path, ListenOptions{})
			if err == nil {
				conn.Close()
				t.Fatal("Listen over a non-socket succeeded")
			}
			if !errors.Is(err, ErrNotSocket) {
				t.Errorf("Listen error = %v, want ErrNotSocket", err)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("directory changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshot describes every entry of dir: name, type, mode, inode, size,
// symlink target and regular file contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		b.WriteString(e.Name() + " " + fi.Mode().String() + " ino=" + strconv.FormatUint(st.Ino, 10))
		switch {
		case fi.Mode().Type() == fs.ModeSymlink:
			target, _ := os.Readlink(p)
			b.WriteString(" -> " + target)
		case fi.Mode().IsRegular():
			data, _ := os.ReadFile(p)
			b.WriteString(" " + strconv.Quote(string(data)))
		}
		b.WriteString("; ")
	}
	return b.String()
}

func TestListenMode(t *testing.T) {
	// The mode must not depend on the umask.
	old := unix.Umask(0o077)
	defer unix.Umask(old)

	for _, tc := range []struct {
		mode fs.FileMode
		want fs.FileMode
	}{
		{0, 0o666},
		{0o620, 0o620},
		{0o777, 0o777},
	} {
		_, path := listenForTest(t, ListenOptions{Mode: tc.mode})
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != fs.ModeSocket {
			t.Errorf("Mode %v: file type %v, want socket", tc.mode, fi.Mode().Type())
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("Mode %v: permission %v, want %v", tc.mode, got, tc.want)
		}
	}
}

func TestListenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Listen(filepath.Join(dir, "missing", "s"), ListenOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Listen in missing directory: error %v, want ErrNotExist", err)
	}
	path := filepath.Join(dir, "s")
	if _, err := Listen(path, ListenOptions{Mode: fs.ModeSetuid | 0o666}); err == nil {
		t.Error("Listen with setuid mode succeeded")
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Listen left %s behind (%v)", path, err)
	}
}

func getsockopt(t *testing.T, conn *net.UnixConn, opt int) int {
	t.Helper()
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var opErr error
	if err := rc.Control(func(fd uintptr) { v, opErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, opt) }); err != nil {
		t.Fatal(err)
	}
	if opErr != nil {
		t.Fatal(opErr)
	}
	return v
}

func TestListenSocketOptions(t *testing.T) {
	privileged := unix.Geteuid() == 0

	conn, _ := listenForTest(t, ListenOptions{})
	if getsockopt(t, conn, unix.SO_PASSCRED) != 1 {
		t.Error("SO_PASSCRED is off")
	}
	size, err := RecvBufferSize(conn)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SO_RCVBUF after requesting %d: %d (privileged %v)", DefaultRecvBuffer, size, privileged)
	if privileged && size < DefaultRecvBuffer {
		t.Errorf("SO_RCVBUF = %d, want at least %d with SO_RCVBUFFORCE", size, DefaultRecvBuffer)
	}

	// A negative RecvBuffer leaves the kernel's default alone.
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defaultSize, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	conn, _ = listenForTest(t, ListenOptions{RecvBuffer: -1})
	if size, err := RecvBufferSize(conn); err != nil || size != defaultSize {
		t.Errorf("RecvBuffer -1: SO_RCVBUF = %d, %v; want the default %d", size, err, defaultSize)
	}
}

func TestPrepare(t *testing.T) {
	// A socket as systemd would pass it without PassCredentials=yes.
	path := filepath.Join(t.TempDir(), "s")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if getsockopt(t, conn, unix.SO_PASSCRED) != 0 {
		t.Fatal("fresh socket already has SO_PASSCRED")
	}
	client := dialForTest(t, path)
	if _, err := client.Write([]byte("before")); err != nil {
		t.Fatal(err)
	}

	if err := Prepare(conn, ListenOptions{RecvBuffer: 1 << 20}); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if getsockopt(t, conn, unix.SO_PASSCRED) != 1 {
		t.Error("SO_PASSCRED is off after Prepare")
	}
	if unix.Geteuid() == 0 {
		if size, err := RecvBufferSize(conn); err != nil || size < 1<<20 {
			t.Errorf("SO_RCVBUF = %d, %v; want at least %d", size, err, 1<<20)
		}
	}
	if _, err := client.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}

	r := newReceiverForTest(t, conn, ReceiverOptions{})
	msgs, err := r.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("received %d datagrams, want 2", len(msgs))
	}
	// Queued before SO_PASSCRED: the kernel reports pid 0, uid 65534.
	if m := msgs[0]; string(m.Data) != "before" || m.Creds.OK {
		t.Errorf("first datagram %q creds %+v, want \"before\" without credentials", m.Data, m.Creds)
	}
	if m := msgs[1]; string(m.Data) != "after" || !m.Creds.OK || m.Creds.PID != uint32(os.Getpid()) {
		t.Errorf("second datagram %q creds %+v, want \"after\" from pid %d", m.Data, m.Creds, os.Getpid())
	}

	// Prepare must leave the socket non-blocking: deadlines still work.
	conn.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := r.Receive(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Receive after deadline: error %v, want ErrDeadlineExceeded", err)
	}
}

func TestPrepareRejectsStream(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Prepare(c, ListenOptions{}); err == nil {
		t.Error("Prepare on a stream socket succeeded")
	}
}

func TestMaxDgramQlen(t *testing.T) {
	qlen, err := MaxDgramQlen()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("net.unix.max_dgram_qlen = %d", qlen)

	// It is the binding limit: a socket nobody reads takes qlen+1 small
	// datagrams, then a non-blocking sender gets EAGAIN, even though the
	// receive buffer has room for far more.
	_, path := listenForTest(t, ListenOptions{})
	fd := rawDial(t, path)
	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatal(err)
	}
	sent := 0
	for ; sent <= qlen+1; sent++ {
		if _, err := unix.Write(fd, []byte("x")); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if sent != qlen+1 {
		t.Errorf("queue took %d datagrams before EAGAIN, want max_dgram_qlen+1 = %d", sent, qlen+1)
	}
}
