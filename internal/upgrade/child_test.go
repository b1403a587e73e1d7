//go:build linux

package upgrade

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newUpgradeForTest returns the new process's side of a handover whose
// control socket is connected to peer, the old process's side, in this
// process.
func newUpgradeForTest(t *testing.T) (*Upgrade, *net.UnixConn) {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := fdConn(pair[0])
	if err != nil {
		t.Fatal(err)
	}
	peer, err := fdConn(pair[1])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ctl.Close(); peer.Close() })
	return &Upgrade{ctl: ctl, files: map[string]*os.File{}}, peer
}

// expectMsg reads one message from peer and requires it to be want.
func expectMsg(t *testing.T, peer *net.UnixConn, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := recv(ctx, peer)
	if err != nil {
		t.Fatalf("receive %q: %v", want, err)
	}
	if got != want {
		t.Fatalf("received %q, want %q", got, want)
	}
}

// expectClosed requires that peer sees the other end closed.
func expectClosed(t *testing.T, peer *net.UnixConn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if msg, err := recv(ctx, peer); !errors.Is(err, errPeerClosed) {
		t.Fatalf("after the last message: got %q, %v; want the socket closed", msg, err)
	}
}

func sendPeer(t *testing.T, peer *net.UnixConn, msg string) {
	t.Helper()
	if err := send(context.Background(), peer, msg); err != nil {
		t.Fatal(err)
	}
}

func TestUpgradeSendsProtocol(t *testing.T) {
	u, peer := newUpgradeForTest(t)
	if err := u.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	expectMsg(t, peer, "ready")
	sendPeer(t, peer, "released")
	if err := u.WaitReleased(context.Background()); err != nil {
		t.Fatalf("WaitReleased: %v", err)
	}
	if err := u.Running(); err != nil {
		t.Fatalf("Running: %v", err)
	}
	expectMsg(t, peer, "running")
	expectClosed(t, peer)
	if err := u.Failed("too late"); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("Failed after Running: err = %v, want ErrOutOfOrder", err)
	}
}

func TestUpgradeOutOfOrder(t *testing.T) {
	u, _ := newUpgradeForTest(t)
	if err := u.WaitReleased(context.Background()); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("WaitReleased before Ready: err = %v, want ErrOutOfOrder", err)
	}
	if err := u.Running(); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("Running before WaitReleased: err = %v, want ErrOutOfOrder", err)
	}
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}
	if err := u.Ready(); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("Ready twice: err = %v, want ErrOutOfOrder", err)
	}
	if err := u.Running(); !errors.Is(err, ErrOutOfOrder) {
		t.Errorf("Running before WaitReleased: err = %v, want ErrOutOfOrder", err)
	}
}

func TestWaitReleasedParentGone(t *testing.T) {
	u, peer := newUpgradeForTest(t)
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}
	peer.Close() // "ready" unread: the child sees ECONNRESET, not EOF
	if err := u.WaitReleased(context.Background()); !errors.Is(err, ErrParentGone) {
		t.Errorf("WaitReleased: err = %v, want ErrParentGone", err)
	}
	if err := u.Failed("parent gone"); !errors.Is(err, ErrParentGone) {
		t.Errorf("Failed to a closed socket: err = %v, want ErrParentGone", err)
	}
}

func TestWaitReleasedTimeoutThenRetry(t *testing.T) {
	u, peer := newUpgradeForTest(t)
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}
	expectMsg(t, peer, "ready")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := u.WaitReleased(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitReleased: err = %v, want DeadlineExceeded", err)
	}
	// The deadline used to interrupt the read is cleared: a retry works.
	sendPeer(t, peer, "released")
	if err := u.WaitReleased(context.Background()); err != nil {
		t.Fatalf("WaitReleased after a timeout: %v", err)
	}
}

func TestWaitReleasedUnexpectedMessage(t *testing.T) {
	u, peer := newUpgradeForTest(t)
	if err := u.Ready(); err != nil {
		t.Fatal(err)
	}
	sendPeer(t, peer, "running")
	err := u.WaitReleased(context.Background())
	if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), `"running"`) {
		t.Errorf("WaitReleased: err = %v, want ErrProtocol naming the message", err)
	}
}

func TestFailedMessages(t *testing.T) {
	for _, tc := range []struct{ reason, want string }{
		{"config: bad ring size", "failed: config: bad ring size"},
		{"", "failed: unspecified"},
		{strings.Repeat("x", 5000), "failed: " + strings.Repeat("x", maxReason)},
	} {
		u, peer := newUpgradeForTest(t)
		if err := u.Failed(tc.reason); err != nil {
			t.Fatalf("Failed: %v", err)
		}
		expectMsg(t, peer, tc.want)
		expectClosed(t, peer)
	}
}

func TestInheritedWithoutUpgrade(t *testing.T) {
	t.Setenv(envVersion, "") // restored after the test
	os.Unsetenv(envVersion)
	u, err := Inherited()
	if u != nil || err != nil {
		t.Errorf("Inherited() = %v, %v; want nil, nil", u, err)
	}
}

// Inherited must not touch fd 3 and up unless the variables were meant for
// this process and fd 3 is a control socket. In the test process fd 3 is
// something of the runtime's.
func TestInheritedLeavesForeignDescriptorsAlone(t *testing.T) {
	for name, ppid := range map[string]int{
		"another parent":            os.Getppid() + 1,
		"fd 3 is no control socket": os.Getppid(),
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv(envVersion, "1")
			t.Setenv(envPPID, strconv.Itoa(ppid))
			t.Setenv(envNames, "ingest")
			before3, before4 := fdState(3), fdState(4)
			u, err := Inherited()
			if u != nil || !errors.Is(err, ErrProtocol) {
				t.Fatalf("Inherited() = %v, %v; want nil, ErrProtocol", u, err)
			}
			for _, k := range []string{envVersion, envPPID, envNames} {
				if v, ok := os.LookupEnv(k); ok {
					t.Errorf("%s=%q still set after Inherited", k, v)
				}
			}
			if after := fdState(3); after != before3 {
				t.Errorf("fd 3 changed: %q, was %q", after, before3)
			}
			if after := fdState(4); after != before4 {
				t.Errorf("fd 4 changed: %q, was %q", after, before4)
			}
		})
	}
}

// fdState describes fd: what it refers to and its descriptor flags.
func fdState(fd int) string {
	target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		return "closed"
	}
	return target + " flags=" + strconv.Itoa(flags)
}
