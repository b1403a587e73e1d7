//go:build linux

package upgrade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// The environment of the new process. Version 1 of the protocol; see the
// package documentation.
const (
	envVersion = "COLLECTORD_UPGRADE"         // protocol version, "1"
	envPPID    = "COLLECTORD_UPGRADE_PPID"    // pid of the old process
	envNames   = "COLLECTORD_UPGRADE_FDNAMES" // names of fds 4, 5, ... joined by ':'

	protocolVersion = "1"

	// ctlFD is the control socket in the new process, in every protocol
	// version; the named files follow it.
	ctlFD       = 3
	firstFileFD = 4
)

// Control messages, one per SOCK_SEQPACKET packet.
const (
	msgReady    = "ready"    // new -> old: initialised, waiting for the writer role
	msgReleased = "released" // old -> new: stopped reading, published, unlocked
	msgRunning  = "running"  // new -> old: took the lock and reads
	msgFailed   = "failed: " // new -> old, followed by a reason
)

const (
	// maxMessage bounds a received control message; longer ones are cut.
	maxMessage = 4096
	// maxReason bounds the reason sent with a failure.
	maxReason = 1024
)

var (
	// ErrChildExited means the new process exited (or closed the control
	// socket, after which it was killed) before completing the handover.
	// The error wrapping it names the exit status.
	ErrChildExited = errors.New("upgrade: new process exited")
	// ErrParentGone means the old process closed the control socket
	// before releasing the writer role: it died, or gave up on this
	// upgrade. It holds no lock any more, but it did not say it published
	// everything it read.
	ErrParentGone = errors.New("upgrade: old process closed the control socket")
	// ErrProtocol means the other side sent a message that is not valid
	// at this point of the handover, or the environment describing the
	// handover is malformed.
	ErrProtocol = errors.New("upgrade: protocol violation")
	// ErrAborted means Abort killed the new process while this call
	// waited for it.
	ErrAborted = errors.New("upgrade: aborted")
	// ErrOutOfOrder means a method was called in the wrong phase, for
	// example Released before WaitReady succeeded, or twice.
	ErrOutOfOrder = errors.New("upgrade: call out of order")
)

// FailedError is returned by Child.WaitReady and Child.Released when the
// new process reported that it cannot take over.
type FailedError struct {
	PID    int    // the new process, now killed and reaped
	Reason string // as given to Upgrade.Failed
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("upgrade: new process %d failed: %s", e.PID, e.Reason)
}

// errPeerClosed is the internal form of "the other end closed the control
// socket"; each side maps it to its own exported error.
var errPeerClosed = errors.New("control socket closed by peer")

// send writes one control message, giving up when ctx is done.
func send(ctx context.Context, c *net.UnixConn, msg string) error {
	err := withDeadline(ctx, c.SetWriteDeadline, func() error {
		_, err := c.Write([]byte(msg))
		return err
	})
	return peerError(err)
}

// recv reads one control message, giving up when ctx is done.
func recv(ctx context.Context, c *net.UnixConn) (string, error) {
	buf := make([]byte, maxMessage)
	var n int
	err := withDeadline(ctx, c.SetReadDeadline, func() error {
		var err error
		n, err = c.Read(buf)
		return err
	})
	if err != nil {
		return "", peerError(err)
	}
	return string(buf[:n]), nil
}

// peerError turns the ways a closed peer shows up into errPeerClosed. A
// SOCK_SEQPACKET read returns EOF once the queue is empty, or ECONNRESET
// if the peer closed with our messages still unread; a write fails with
// EPIPE.
func peerError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return errPeerClosed
	}
	return err
}

// withDeadline runs op, an I/O call on a connection, and interrupts it
// through set (SetReadDeadline or SetWriteDeadline) if ctx is done first.
// It returns ctx's error if op was interrupted, and leaves no deadline set.
func withDeadline(ctx context.Context, set func(time.Time) error, op func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = set(time.Unix(1, 0))
		close(fired)
	})
	err := op()
	if !stop() {
		<-fired
		_ = set(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return ctx.Err()
		}
	}
	return err
}

// failedMessage builds the failure message, bounding the reason.
func failedMessage(reason string) string {
	if reason == "" {
		reason = "unspecified"
	}
	if len(reason) > maxReason {
		reason = reason[:maxReason]
	}
	return msgFailed + reason
}

// describe quotes a received message for an error, shortened.
func describe(msg string) string {
	if len(msg) > 64 {
		msg = msg[:64] + "..."
	}
	return fmt.Sprintf("%q", msg)
}

// cutFailed reports whether msg is a failure message and returns its
// reason.
func cutFailed(msg string) (string, bool) {
	return strings.CutPrefix(msg, msgFailed)
}
