//go:build linux

package upgrade

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/fdname"
)

// upgradePhase is where the new process stands in the handover.
type upgradePhase int

const (
	upStarted  upgradePhase = iota // inherited; initialising
	upReady                        // "ready" sent
	upReleased                     // "released" received; the writer role is ours
	upDone                         // "running" or "failed" sent; control socket closed
)

// Upgrade is the new process's side of an in-place upgrade: the files the
// old process handed over and the control socket to it. It is used by one
// goroutine, in the order Ready, WaitReleased, Running; Failed may replace
// any step.
type Upgrade struct {
	ctl   *net.UnixConn
	files map[string]*os.File
	phase upgradePhase
}

// Inherited reports whether this process was started by Start, and if so
// takes over what the old process handed it. It reads and unsets the
// COLLECTORD_UPGRADE* variables, so processes this one starts later do not
// inherit them; calling it again returns (nil, nil).
//
//   - (nil, nil): not an upgrade; start normally.
//   - (u, nil): an upgrade; the old process still serves and waits for
//     u.Ready.
//   - (nil, err): the environment announces an upgrade that cannot go on:
//     it was meant for another process (the old process is not our
//     parent; the descriptors are then left alone), fd 3 is not a control
//     socket, a named descriptor is missing, or the old process speaks a
//     protocol version this binary does not know. When the control socket
//     was usable, the old process has been told (it sees a *FailedError).
//     The caller should log err and exit non-zero: the old process keeps
//     serving. err wraps ErrProtocol.
func Inherited() (*Upgrade, error) {
	version, ok := os.LookupEnv(envVersion)
	if !ok {
		return nil, nil
	}
	ppid, names := os.Getenv(envPPID), os.Getenv(envNames)
	for _, k := range []string{envVersion, envPPID, envNames} {
		os.Unsetenv(k)
	}

	if parent := os.Getppid(); ppid != strconv.Itoa(parent) {
		return nil, fmt.Errorf("%w: %s=%q, but the parent process is %d: the variables were not meant for this process; inherited descriptors left alone",
			ErrProtocol, envPPID, ppid, parent)
	}
	if err := checkControl(ctlFD); err != nil {
		return nil, fmt.Errorf("%w: fd %d: %v; inherited descriptors left alone", ErrProtocol, ctlFD, err)
	}
	unix.CloseOnExec(ctlFD)
	ctl, err := fdConn(ctlFD)
	if err != nil {
		return nil, fmt.Errorf("%w: control socket fd %d: %v", ErrProtocol, ctlFD, err)
	}
	u := &Upgrade{ctl: ctl, files: make(map[string]*os.File)}
	// From here on the old process is told why we give up.
	if version != protocolVersion {
		return nil, u.reject(fmt.Sprintf("unsupported upgrade protocol version %q (this binary speaks %s)", version, protocolVersion))
	}
	var list []string
	if names != "" {
		list = strings.Split(names, ":")
	}
	for i, name := range list {
		fd := firstFileFD + i
		if err := fdname.Check(name); err != nil {
			return nil, u.reject(err.Error())
		}
		if u.files[name] != nil {
			return nil, u.reject(fmt.Sprintf("file name %q given twice", name))
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, u.reject(fmt.Sprintf("file %q: fd %d: %v", name, fd, err))
		}
		unix.CloseOnExec(fd)
		u.files[name] = os.NewFile(uintptr(fd), name)
	}
	return u, nil
}

// checkControl verifies that fd is a UNIX SOCK_SEQPACKET socket, as the
// control socket must be.
func checkControl(fd int) error {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return err
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return err
	}
	if domain != unix.AF_UNIX || typ != unix.SOCK_SEQPACKET {
		return fmt.Errorf("socket domain %d type %d, want AF_UNIX SOCK_SEQPACKET", domain, typ)
	}
	return nil
}

// reject reports reason to the old process, closes everything inherited so
// far, and returns the error for Inherited.
func (u *Upgrade) reject(reason string) error {
	_ = u.Failed(reason)
	for _, f := range u.files {
		f.Close()
	}
	return fmt.Errorf("%w: %s", ErrProtocol, reason)
}

// Files returns the inherited files by name, in a new map. The caller owns
// them: it converts the ones it uses (net.FileConn, net.FileListener, which
// duplicate the descriptor) and closes every *os.File, used or not. They
// are close-on-exec.
//
// Each file shares its open socket with the old process, which may still
// be serving: never call Fd on them, which would switch the socket to
// blocking mode in both processes. Use SyscallConn, or the net conversions,
// which keep it non-blocking.
func (u *Upgrade) Files() map[string]*os.File { return maps.Clone(u.files) }

// Ready tells the old process that this one has initialised everything
// except the single-writer role: it must not read the datagram socket or
// take the ring lock before WaitReleased returns. The message fits in the
// socket buffer, so Ready does not block.
func (u *Upgrade) Ready() error {
	if err := u.expectPhase(upStarted, "Ready"); err != nil {
		return err
	}
	if err := u.send(msgReady); err != nil {
		return fmt.Errorf("send ready: %w", err)
	}
	u.phase = upReady
	return nil
}

// WaitReleased waits until the old process has stopped reading the
// datagram socket, published what it read and released the ring lock.
// When it returns nil, take the lock, start reading, then call Running.
//
// Errors: ErrParentGone if the old process closed the control socket
// first (it is dead or gave up; taking the lock is still safe, because the
// lock itself is the single-writer guarantee, but whether to go on is the
// caller's decision), ctx's error if ctx ended first (Failed may follow),
// ErrProtocol for any other message.
func (u *Upgrade) WaitReleased(ctx context.Context) error {
	if err := u.expectPhase(upReady, "WaitReleased"); err != nil {
		return err
	}
	msg, err := recv(ctx, u.ctl)
	switch {
	case errors.Is(err, errPeerClosed):
		return fmt.Errorf("wait for release: %w", ErrParentGone)
	case err != nil:
		return fmt.Errorf("wait for release: %w", err)
	case msg != msgReleased:
		return fmt.Errorf("wait for release: %w: unexpected message %s", ErrProtocol, describe(msg))
	}
	u.phase = upReleased
	return nil
}

// Running tells the old process that this one holds the ring lock and
// reads the datagram socket, and closes the control socket: the handover
// is complete. The old process then drains and exits.
func (u *Upgrade) Running() error {
	if err := u.expectPhase(upReleased, "Running"); err != nil {
		return err
	}
	err := u.send(msgRunning)
	u.close()
	if err != nil {
		return fmt.Errorf("send running: %w", err)
	}
	return nil
}

// Failed tells the old process that this one cannot take over, with a
// one-line reason (cut to 1024 bytes), and closes the control socket. The
// old process kills this one at once (SIGKILL) and carries on: log before
// calling Failed, and expect not to run long after it. Valid at any point
// before Running.
func (u *Upgrade) Failed(reason string) error {
	if u.phase == upDone {
		return fmt.Errorf("report failure: %w", ErrOutOfOrder)
	}
	err := u.send(failedMessage(reason))
	u.close()
	if err != nil {
		return fmt.Errorf("send failure: %w", err)
	}
	return nil
}

func (u *Upgrade) send(msg string) error {
	err := send(context.Background(), u.ctl, msg)
	if errors.Is(err, errPeerClosed) {
		return ErrParentGone
	}
	return err
}

func (u *Upgrade) close() {
	u.ctl.Close()
	u.phase = upDone
}

func (u *Upgrade) expectPhase(want upgradePhase, call string) error {
	if u.phase != want {
		return fmt.Errorf("%s: %w", call, ErrOutOfOrder)
	}
	return nil
}
