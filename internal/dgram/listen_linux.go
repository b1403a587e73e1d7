//go:build linux

package dgram

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Defaults for ListenOptions.
const (
	// DefaultMode is the socket file's permission when ListenOptions.Mode
	// is zero: anyone may send, like /dev/log.
	DefaultMode fs.FileMode = 0o666
	// DefaultRecvBuffer is the SO_RCVBUF size, in bytes, requested when
	// ListenOptions.RecvBuffer is zero.
	DefaultRecvBuffer = 8 << 20
)

var (
	// ErrInUse means a live process serves the socket at the path given to
	// Listen; the file was left alone.
	ErrInUse = errors.New("dgram: socket is in use by another process")
	// ErrNotSocket means the path given to Listen exists and is not a
	// socket (a regular file, directory, symlink, ...); it was left alone.
	ErrNotSocket = errors.New("dgram: path exists and is not a socket")
)

// ListenOptions configures Listen and Prepare. The zero value means
// defaults.
type ListenOptions struct {
	// Mode is the permission of the socket file created by Listen; only
	// the permission bits are used. Senders need write permission to
	// send. Ignored by Prepare. Default DefaultMode (0666).
	Mode fs.FileMode
	// RecvBuffer is the SO_RCVBUF size in bytes. Listen and Prepare use
	// SO_RCVBUFFORCE when the process is allowed to (CAP_NET_ADMIN) and
	// otherwise SO_RCVBUF, which the kernel silently caps at
	// net.core.rmem_max; RecvBufferSize reports what was granted. A
	// negative value leaves the socket's buffer size unchanged (for
	// example when a systemd unit already set ReceiveBuffer=). Default
	// DefaultRecvBuffer (8 MiB).
	RecvBuffer int
}

func (o ListenOptions) mode() fs.FileMode {
	if o.Mode == 0 {
		return DefaultMode
	}
	return o.Mode.Perm()
}

func (o ListenOptions) recvBuffer() int {
	if o.RecvBuffer == 0 {
		return DefaultRecvBuffer
	}
	return o.RecvBuffer
}

// Listen binds a UNIX datagram socket at path, turns on SO_PASSCRED, raises
// its receive buffer and sets the file's permission to opts.Mode (with
// chmod after bind, so the umask does not matter). The parent directory must
// exist.
//
// If path already exists Listen decides what it is without deleting
// anything it should not:
//   - a socket nobody serves (connect is refused: a daemon died without
//     removing it) is removed and replaced;
//   - a socket some process serves gives an error matching ErrInUse;
//   - anything else (regular file, directory, symlink, fifo) gives an
//     error matching ErrNotSocket.
//
// Two processes replacing the same stale file at the same moment can race
// (both see it stale, one removes the other's fresh socket); the daemon's
// single-writer lock on the ring is what rules that out, not Listen.
//
// Closing the returned connection does not remove the socket file, so
// datagram senders keep failing fast with ECONNREFUSED until the next Listen
// replaces it.
func Listen(path string, opts ListenOptions) (*net.UnixConn, error) {
	if opts.Mode&^fs.ModePerm != 0 {
		return nil, fmt.Errorf("listen %s: mode %v has bits other than permissions", path, opts.Mode)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, os.NewSyscallError("socket", err))
	}
	// Credentials are switched on before bind so that no datagram can
	// arrive without them.
	if err := setOptions(fd, opts); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := bind(fd, path); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, opts.mode()); err != nil {
		unix.Close(fd)
		os.Remove(path)
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	conn, err := fdToConn(fd, path)
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return conn, nil
}

// bind binds fd to path, replacing a stale socket file once.
func bind(fd int, path string) error {
	addr := &unix.SockaddrUnix{Name: path}
	err := unix.Bind(fd, addr)
	if err == nil {
		return nil
	}
	if err != unix.EADDRINUSE {
		return os.NewSyscallError("bind", err)
	}
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%w (%v)", ErrNotSocket, fi.Mode().Type())
	}
	live, err := served(path)
	if err != nil {
		return fmt.Errorf("probe existing socket: %w", err)
	}
	if live {
		return ErrInUse
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	if err := unix.Bind(fd, addr); err != nil {
		if err == unix.EADDRINUSE {
			// Someone bound it between our remove and bind.
			return ErrInUse
		}
		return os.NewSyscallError("bind", err)
	}
	return nil
}

// served reports whether a process has the socket file at path open, by
// connecting a datagram socket to it. The kernel answers ECONNREFUSED only
// when no socket is bound to the file's inode; a live socket of another type
// answers EPROTOTYPE, and a live datagram socket connected to a third party
// answers EPERM.
func served(path string) (bool, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	switch err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err {
	case nil, unix.EPROTOTYPE, unix.EPERM:
		return true, nil
	case unix.ECONNREFUSED:
		return false, nil
	default:
		return false, os.NewSyscallError("connect", err)
	}
}

// fdToConn wraps a bound socket fd in a *net.UnixConn and closes fd (the
// connection holds a duplicate).
func fdToConn(fd int, name string) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), name)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("socket is a %T, not a unix socket", c)
	}
	return uc, nil
}

// Prepare applies opts to an already open UNIX datagram socket, such as one
// passed by systemd socket activation: it turns on SO_PASSCRED, turns off
// SO_PASSPIDFD and SO_PASSSEC (PassPIDFD= and PassSecurity= in a socket
// unit), whose control messages Receiver does not read, and sets the receive
// buffer as Listen does. It returns an error if conn is not a
// SOCK_DGRAM socket. opts.Mode is ignored. The socket stays non-blocking.
func Prepare(conn *net.UnixConn, opts ListenOptions) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("prepare socket: %w", err)
	}
	var opErr error
	err = rc.Control(func(fd uintptr) {
		typ, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			opErr = os.NewSyscallError("getsockopt SO_TYPE", err)
			return
		}
		if typ != unix.SOCK_DGRAM {
			opErr = fmt.Errorf("socket type is %d, not SOCK_DGRAM", typ)
			return
		}
		opErr = setOptions(int(fd), opts)
	})
	if err == nil {
		err = opErr
	}
	if err != nil {
		return fmt.Errorf("prepare socket %s: %w", conn.LocalAddr(), err)
	}
	return nil
}

// setOptions sets SO_PASSCRED, clears SO_PASSPIDFD and sets the receive
// buffer on fd.
func setOptions(fd int, opts ListenOptions) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return os.NewSyscallError("setsockopt SO_PASSCRED", err)
	}
	// These would add control messages Receiver does not size its buffers
	// for, squeezing out passed descriptors. Kernels before 6.5 do not know
	// SO_PASSPIDFD, so nobody can have set it.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSPIDFD, 0); err != nil && err != unix.ENOPROTOOPT {
		return os.NewSyscallError("setsockopt SO_PASSPIDFD", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSSEC, 0); err != nil {
		return os.NewSyscallError("setsockopt SO_PASSSEC", err)
	}
	size := opts.recvBuffer()
	if size < 0 {
		return nil
	}
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
	if err == unix.EPERM {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	}
	if err != nil {
		return os.NewSyscallError("setsockopt SO_RCVBUF", err)
	}
	return nil
}

// RecvBufferSize returns the socket's SO_RCVBUF as the kernel reports it:
// twice the granted request (the kernel doubles it to allow for
// bookkeeping), and capped by net.core.rmem_max when SO_RCVBUFFORCE was not
// allowed.
func RecvBufferSize(conn *net.UnixConn) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("get receive buffer: %w", err)
	}
	var size int
	var opErr error
	err = rc.Control(func(fd uintptr) {
		size, opErr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	if err == nil && opErr != nil {
		err = os.NewSyscallError("getsockopt SO_RCVBUF", opErr)
	}
	if err != nil {
		return 0, fmt.Errorf("get receive buffer: %w", err)
	}
	return size, nil
}

// maxDgramQlenPath is where Linux exposes net.unix.max_dgram_qlen for the
// calling process's network namespace.
const maxDgramQlenPath = "/proc/sys/net/unix/max_dgram_qlen"

// MaxDgramQlen returns the sysctl net.unix.max_dgram_qlen of the calling
// process's network namespace: how many datagrams an AF_UNIX datagram
// socket created from now on may hold queued before senders block. It is
// the binding limit for a busy socket (see the package documentation). The
// kernel default is 10; systemd raises it to 512 at boot. A socket keeps the
// value that was current when it was created.
func MaxDgramQlen() (int, error) {
	b, err := os.ReadFile(maxDgramQlenPath)
	if err != nil {
		return 0, fmt.Errorf("read max_dgram_qlen: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", maxDgramQlenPath, err)
	}
	return n, nil
}
