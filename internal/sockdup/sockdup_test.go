//go:build linux

package sockdup

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDupKeepsNonBlocking(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fd, err := Dup(l.(*net.TCPListener))
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "dup")
	defer f.Close()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK == 0 {
		t.Fatalf("duplicate flags %#x, %v: want O_NONBLOCK kept", fl, err)
	}
	fdfl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if fdfl&unix.FD_CLOEXEC == 0 {
		t.Fatal("duplicate is not close-on-exec")
	}
	// The duplicate is the same listening socket.
	dl, err := net.FileListener(f)
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	if dl.Addr().String() != l.Addr().String() {
		t.Fatalf("duplicate listens on %s, original on %s", dl.Addr(), l.Addr())
	}
}
