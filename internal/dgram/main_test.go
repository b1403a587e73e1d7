//go:build linux

package dgram

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
)

// The test binary's child "send PATH" is a client in another process: it
// sends one datagram "child <pid>" to the socket at PATH and exits.
func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func([]string) error{
		"send": func(args []string) error { return childSend(args[0]) },
	})
}

func childSend(path string) error {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = fmt.Fprintf(c, "child %d", os.Getpid())
	return err
}

// listenForTest binds a socket in a fresh temporary directory and closes it
// when the test ends.
func listenForTest(t *testing.T, opts ListenOptions) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	conn, err := Listen(path, opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, path
}

func newReceiverForTest(t *testing.T, conn *net.UnixConn, opts ReceiverOptions) *Receiver {
	t.Helper()
	r, err := NewReceiver(conn, opts)
	if err != nil {
		t.Fatalf("NewReceiver: %v", err)
	}
	return r
}

// dialForTest connects a client datagram socket to path.
func dialForTest(t testing.TB, path string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawDial connects a blocking client socket to path and returns its fd,
// closed when the test ends. Writing to it does not allocate.
func rawDial(t testing.TB, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatalf("connect %s: %v", path, err)
	}
	return fd
}

// receiveOne calls Receive and insists on exactly one datagram.
func receiveOne(t *testing.T, r *Receiver) *Msg {
	t.Helper()
	msgs, err := r.Receive()
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != 1 {
		t.Fatalf("Receive returned %d datagrams, want 1", len(msgs))
	}
	return &msgs[0]
}

// waitBlockedInReceive waits until some goroutine is parked in the
// netpoller inside Receiver.Receive.
func waitBlockedInReceive(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "[IO wait") && strings.Contains(g, "(*Receiver).Receive") {
				return
			}
		}
		runtime.Gosched()
	}
	t.Fatal("no goroutine blocked in Receive after 10s")
}
