//go:build linux

package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/collectord/collectord/internal/fdname"
	"github.com/collectord/collectord/internal/sockdup"

	"golang.org/x/sys/unix"
)

// Limits on one notification.
const (
	// MaxMessage is the longest payload, in bytes, that systemd reads in
	// one notification (its receive buffer is PIPE_BUF); longer messages
	// are refused here instead of being cut by systemd.
	MaxMessage = 4096
	// MaxFDs is the most descriptors one datagram can carry (the kernel's
	// SCM_MAX_FD).
	MaxFDs = 253
)

var (
	// ErrUnsupportedAddress means $NOTIFY_SOCKET holds an address this
	// package cannot send to: not an absolute path, not an abstract name
	// starting with '@' (for example "vsock:2:1234").
	ErrUnsupportedAddress = errors.New("sdnotify: unsupported NOTIFY_SOCKET address")
	// ErrInvalid means the message was not sent because an argument would
	// make it malformed: an empty state, a value containing a newline, a
	// bad fd name, too many descriptors or too long a message.
	ErrInvalid = errors.New("sdnotify: invalid notification")
)

// Notifier sends notifications to the service manager. The zero value and
// a nil *Notifier are disabled: every method does nothing and returns nil.
// A Notifier is immutable and safe for concurrent use.
type Notifier struct {
	addr string // $NOTIFY_SOCKET as read by New; "" means disabled
}

// New reads $NOTIFY_SOCKET once and returns a Notifier for it, disabled if
// the variable is unset or empty. It does not unset the variable (see the
// package documentation). A malformed address is reported by the first
// send, as ErrUnsupportedAddress, so that a misconfigured unit fails loudly
// at READY=1 instead of silently never becoming ready.
func New() *Notifier {
	return &Notifier{addr: os.Getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether notifications are sent anywhere, that is whether
// $NOTIFY_SOCKET was set when New ran.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != "" }

// Notify sends state, newline-separated KEY=VALUE assignments, in one
// datagram, with fds attached as SCM_RIGHTS if any are given. The fds stay
// open and owned by the caller; get them from a socket or file with
// SyscallConn().Control, never with os.File.Fd, which switches a socket to
// blocking mode for every process sharing it. Notify does not validate the
// assignments themselves; the helpers below do.
//
// A nil error means the kernel queued the datagram for systemd, not that
// systemd accepted it (it ignores messages it does not allow, see
// NotifyAccess=).
func (n *Notifier) Notify(state string, fds ...int) error {
	if state == "" {
		return fmt.Errorf("%w: empty state", ErrInvalid)
	}
	if len(state) > MaxMessage {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(state), MaxMessage)
	}
	if len(fds) > MaxFDs {
		return fmt.Errorf("%w: %d descriptors, more than %d", ErrInvalid, len(fds), MaxFDs)
	}
	if !n.Enabled() {
		return nil
	}
	if len(n.addr) < 2 || n.addr[0] != '/' && n.addr[0] != '@' {
		return fmt.Errorf("notify %q: %w", n.addr, ErrUnsupportedAddress)
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("notify %s: socket: %w", n.addr, err)
	}
	defer unix.Close(sock)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// unix.SockaddrUnix turns a leading '@' into the abstract namespace's
	// leading NUL byte.
	to := &unix.SockaddrUnix{Name: n.addr}
	for {
		err = unix.Sendmsg(sock, []byte(state), oob, to, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("notify %s: %w", n.addr, err)
	}
	return nil
}

// Ready sends READY=1, and STATUS=status unless status is empty. Send it
// once the daemon does its job (for collectord: reads the datagram socket),
// and again after a reload or an in-place upgrade completes.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Notify("READY=1")
	}
	if err := checkValue("STATUS", status); err != nil {
		return err
	}
	return n.Notify("READY=1\nSTATUS=" + status)
}

// Reloading sends RELOADING=1 with MONOTONIC_USEC, the current
// CLOCK_MONOTONIC time in microseconds; systemd 253 and later (Type=
// notify-reload) require the timestamp to match the reload to the request.
// Finish the reload with Ready.
func (n *Notifier) Reloading() error {
	if !n.Enabled() {
		return nil
	}
	usec, err := monotonicUsec()
	if err != nil {
		return fmt.Errorf("notify reloading: %w", err)
	}
	return n.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping sends STOPPING=1: the daemon has begun shutting down.
func (n *Notifier) Stopping() error { return n.Notify("STOPPING=1") }

// Status sends STATUS=s, a one-line free-form description shown by
// systemctl status.
func (n *Notifier) Status(s string) error {
	if err := checkValue("STATUS", s); err != nil {
		return err
	}
	return n.Notify("STATUS=" + s)
}

// MainPID sends MAINPID=pid: from now on systemd treats pid as the
// service's main process (its exit ends the service, and with
// NotifyAccess=main only it may notify). An in-place upgrade sends it for
// the new process.
func (n *Notifier) MainPID(pid int) error {
	if pid <= 0 {
		return fmt.Errorf("%w: MAINPID=%d", ErrInvalid, pid)
	}
	return n.Notify("MAINPID=" + strconv.Itoa(pid))
}

// ExtendTimeout sends EXTEND_TIMEOUT_USEC: the current start, reload or
// stop operation gets d more time, counted from now. Send it again before
// d elapses to keep extending. d is rounded down to whole microseconds and
// must be at least one.
func (n *Notifier) ExtendTimeout(d time.Duration) error {
	usec := d.Microseconds()
	if usec <= 0 {
		return fmt.Errorf("%w: EXTEND_TIMEOUT_USEC for %v", ErrInvalid, d)
	}
	return n.Notify("EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(usec, 10))
}

// StoreFDs sends FDSTORE=1 with FDNAME=name and the descriptors behind
// files (any *os.File, *net.UnixConn, *net.TCPListener, ... ). systemd
// keeps them while the service restarts and passes them back to the next
// instance (LISTEN_FDS/LISTEN_FDNAMES); the unit needs
// FileDescriptorStoreMax= above zero. Several descriptors may share a name.
// systemd removes duplicates of descriptors it already holds.
//
// The descriptors are read with SyscallConn().Control and duplicated for
// the send, so the objects keep their non-blocking mode and stay owned by
// the caller.
//
// FDPOLL=0 is deliberately not sent: systemd then watches each stored
// descriptor and drops it on EPOLLHUP or EPOLLERR. That never fires for a
// listening or bound socket, and a regular file or memfd (the ring) is not
// pollable and so never watched; but it does drop a connected socket whose
// peer went away, which is what we want. A caller that must keep such a
// descriptor sends "FDSTORE=1\nFDNAME=...\nFDPOLL=0" with Notify.
func (n *Notifier) StoreFDs(name string, files ...syscall.Conn) error {
	if err := checkFDName(name); err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("%w: FDSTORE=1 without descriptors", ErrInvalid)
	}
	if !n.Enabled() {
		return nil
	}
	fds := make([]int, 0, len(files))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for i, f := range files {
		fd, err := sockdup.Dup(f)
		if err != nil {
			return fmt.Errorf("store fd %s (#%d): %w", name, i, err)
		}
		fds = append(fds, fd)
	}
	return n.Notify("FDSTORE=1\nFDNAME="+name, fds...)
}

// RemoveFDs sends FDSTOREREMOVE=1 with FDNAME=name: systemd closes every
// stored descriptor of that name.
func (n *Notifier) RemoveFDs(name string) error {
	if err := checkFDName(name); err != nil {
		return err
	}
	return n.Notify("FDSTOREREMOVE=1\nFDNAME=" + name)
}

// checkValue refuses a value that would end its assignment early.
func checkValue(key, v string) error {
	if strings.ContainsAny(v, "\n\x00") {
		return fmt.Errorf("%w: %s value %q contains a newline or NUL", ErrInvalid, key, v)
	}
	return nil
}

// checkFDName applies systemd's rule for fd names.
func checkFDName(name string) error {
	if err := fdname.Check(name); err != nil {
		return fmt.Errorf("%w: FDNAME: %w", ErrInvalid, err)
	}
	return nil
}

func monotonicUsec() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("clock_gettime(CLOCK_MONOTONIC): %w", err)
	}
	return ts.Sec*1e6 + ts.Nsec/1e3, nil
}
