//go:build linux

package upgrade

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/collectord/collectord/internal/fdname"
	"github.com/collectord/collectord/internal/sockdup"

	"golang.org/x/sys/unix"
)

// NamedFile is a descriptor handed to the new process under a name.
type NamedFile struct {
	// Name identifies the file in the new process (Upgrade.Files). It
	// follows systemd's fd name rules: 1 to 255 printable ASCII
	// characters other than ':'; names are unique within one Start.
	Name string
	// File is anything backed by one descriptor: *net.UnixConn,
	// *net.TCPListener, *net.UnixListener, *os.File. Start reads the
	// descriptor with SyscallConn().Control and leaves the object, and
	// its non-blocking mode, untouched; the caller keeps owning it.
	File syscall.Conn
}

// childPhase is where a Child stands in the handover.
type childPhase int

const (
	childStarted childPhase = iota // waiting for "ready"
	childReady                     // "ready" received; old still the writer
	childRunning                   // "running" received; the new process owns the service
	childDead                      // killed and reaped
)

// Child is the parent's handle on the new process during an upgrade.
//
// WaitReady and Released must be called in that order, by one goroutine.
// PID and Abort may be called from any goroutine at any time.
//
// Whenever WaitReady or Released returns an error, the new process has
// already been killed with SIGKILL and reaped: it no longer reads any
// socket or holds any lock, and the old process may resume its role.
type Child struct {
	pid  int
	proc *os.Process
	ctl  *net.UnixConn

	mu    sync.Mutex
	phase childPhase

	reapOnce sync.Once
	exit     string // how the process ended, once reaped
}

// Start runs exe as the new process of an in-place upgrade and hands it
// files. It does not wait for the process to initialise; call WaitReady.
//
// args is the full argument vector, argv[0] included, like exec.Cmd.Args;
// if empty it is just exe. exe is the path of the binary to run (usually
// os.Executable(), which names the file now at the old binary's path even
// after a package upgrade replaced it). env is the new process's
// environment, os.Environ() if nil; Start adds the COLLECTORD_UPGRADE*
// variables, replacing any already present. The new process inherits
// stdout and stderr, gets /dev/null as stdin, stays in the caller's process
// group and session, and is not killed when the caller exits.
//
// The descriptors arrive in the new process as fd 4, 5, ... in the order
// of files, after the control socket at fd 3. They share the open socket
// (and its queue, backlog and non-blocking flag) with the caller: nothing
// queued is lost, and both processes can use them until one closes its
// copy.
func Start(exe string, args, env []string, files []NamedFile) (*Child, error) {
	names := make([]string, len(files))
	seen := make(map[string]bool, len(files))
	for i, f := range files {
		if err := fdname.Check(f.Name); err != nil {
			return nil, fmt.Errorf("start upgrade: %w", err)
		}
		if seen[f.Name] {
			return nil, fmt.Errorf("start upgrade: file name %q given twice", f.Name)
		}
		if f.File == nil {
			return nil, fmt.Errorf("start upgrade: file %q is nil", f.Name)
		}
		seen[f.Name] = true
		names[i] = f.Name
	}

	// Every descriptor below is close-on-exec in this process; the child
	// gets exactly the ones listed in attr.Files.
	var closeAfter []int
	defer func() {
		for _, fd := range closeAfter {
			unix.Close(fd)
		}
	}()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("start upgrade: control socketpair: %w", err)
	}
	closeAfter = append(closeAfter, pair[1])
	ctl, err := fdConn(pair[0])
	if err != nil {
		return nil, fmt.Errorf("start upgrade: control socket: %w", err)
	}
	devNull, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("start upgrade: open /dev/null: %w", err)
	}
	closeAfter = append(closeAfter, devNull)
	childFDs := []uintptr{uintptr(devNull), 1, 2, uintptr(pair[1])}
	for _, f := range files {
		// A duplicate, not os.File.Fd: Fd switches the shared open
		// socket to blocking mode, in this process too, which would
		// stop read deadlines from interrupting the ingest loop.
		fd, err := sockdup.Dup(f.File)
		if err != nil {
			ctl.Close()
			return nil, fmt.Errorf("start upgrade: file %q: %w", f.Name, err)
		}
		closeAfter = append(closeAfter, fd)
		childFDs = append(childFDs, uintptr(fd))
	}

	if env == nil {
		env = os.Environ()
	}
	env = withUpgradeEnv(env, names)
	if len(args) == 0 {
		args = []string{exe}
	}
	// syscall.StartProcess rather than os/exec: os.StartProcess calls Fd
	// on every file it passes (see above).
	pid, _, err := syscall.StartProcess(exe, args, &syscall.ProcAttr{
		Env:   env,
		Files: childFDs,
		Sys:   &syscall.SysProcAttr{},
	})
	if err != nil {
		ctl.Close()
		return nil, fmt.Errorf("start upgrade: run %s: %w", exe, err)
	}
	// The child is ours and unreaped, so its pid cannot be reused before
	// we wait for it: FindProcess refers to the right process.
	proc, err := os.FindProcess(pid)
	if err != nil { // cannot happen on Linux
		ctl.Close()
		return nil, fmt.Errorf("start upgrade: find process %d: %w", pid, err)
	}
	return &Child{pid: pid, proc: proc, ctl: ctl}, nil
}

// withUpgradeEnv returns env without any COLLECTORD_UPGRADE* variable,
// plus the ones describing this upgrade.
func withUpgradeEnv(env []string, names []string) []string {
	out := make([]string, 0, len(env)+3)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == envVersion || k == envPPID || k == envNames {
			continue
		}
		out = append(out, kv)
	}
	return append(out,
		envVersion+"="+protocolVersion,
		envPPID+"="+strconv.Itoa(os.Getpid()),
		envNames+"="+strings.Join(names, ":"),
	)
}

// PID returns the new process's pid, for MAINPID= and the pid file.
func (c *Child) PID() int { return c.pid }

// WaitReady waits until the new process says it is ready: it has
// initialised everything except the single-writer role.
//
// It returns nil when the process is ready. Otherwise the process has been
// killed and reaped, and the error says why: a *FailedError if it reported
// a failure, ErrChildExited if it exited first, ctx's error if ctx ended
// first, ErrProtocol for any other message, ErrAborted if Abort ran
// meanwhile, ErrOutOfOrder if called twice (the process is then left
// alone).
func (c *Child) WaitReady(ctx context.Context) error {
	if err := c.expectPhase(childStarted, "WaitReady"); err != nil {
		return err
	}
	msg, err := recv(ctx, c.ctl)
	if err == nil && msg == msgReady {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.phase == childDead {
			return fmt.Errorf("wait for new process %d to be ready: %w", c.pid, ErrAborted)
		}
		c.phase = childReady
		return nil
	}
	return c.fail("be ready", msg, err)
}

// Released tells the new process that the old one has given up the writer
// role (stopped reading the datagram socket, published everything it read,
// released the ring lock; the caller must have done all three), and waits
// until the new process confirms it now runs: it took the lock and reads.
//
// It returns nil when the new process runs; the caller should then drain
// its clients and exit, and must not wait for the new process, which is no
// longer its business: when the caller exits, it is re-parented (to
// systemd, for a service). Abort does nothing from then on.
//
// Otherwise the new process has been killed and reaped, so the caller may
// take the lock and read again; the error is as for WaitReady. If the
// process was killed between taking the writer role and confirming it,
// records it published stay in the ring, and datagrams it had received but
// not yet published are lost.
func (c *Child) Released(ctx context.Context) error {
	if err := c.expectPhase(childReady, "Released"); err != nil {
		return err
	}
	if err := send(ctx, c.ctl, msgReleased); err != nil {
		return c.fail("run", "", err)
	}
	msg, err := recv(ctx, c.ctl)
	if err != nil || msg != msgRunning {
		return c.fail("run", msg, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase == childDead {
		return fmt.Errorf("wait for new process %d to run: %w", c.pid, ErrAborted)
	}
	c.phase = childRunning
	c.ctl.Close()
	// Drop our handle (a pidfd) without waiting: the process outlives us.
	_ = c.proc.Release()
	return nil
}

// Abort kills the new process (SIGKILL) and reaps it, unless the handover
// has completed, in which case it does nothing. It may be called any number
// of times, from any goroutine; `defer c.Abort()` right after Start is the
// intended use. A WaitReady or Released call in progress returns
// ErrAborted or ErrChildExited.
func (c *Child) Abort() {
	c.mu.Lock()
	if c.phase == childRunning {
		c.mu.Unlock()
		return
	}
	c.phase = childDead
	c.mu.Unlock()
	c.reap()
}

func (c *Child) expectPhase(want childPhase, call string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.phase == want {
		return nil
	}
	if c.phase == childDead {
		return fmt.Errorf("%s: new process %d: %w", call, c.pid, ErrAborted)
	}
	return fmt.Errorf("%s: new process %d: %w", call, c.pid, ErrOutOfOrder)
}

// fail ends the upgrade after an error while waiting for the new process
// to reach state: kills and reaps it, and builds the error from what was
// received (msg) or what went wrong (err).
func (c *Child) fail(state, msg string, err error) error {
	c.mu.Lock()
	aborted := c.phase == childDead
	c.phase = childDead
	c.mu.Unlock()
	exit := c.reap()
	switch {
	case aborted:
		return fmt.Errorf("wait for new process %d to %s: %w", c.pid, state, ErrAborted)
	case err == nil:
		if reason, ok := cutFailed(msg); ok {
			return &FailedError{PID: c.pid, Reason: reason}
		}
		return fmt.Errorf("wait for new process %d to %s: %w: unexpected message %s (killed: %s)",
			c.pid, state, ErrProtocol, describe(msg), exit)
	case errors.Is(err, errPeerClosed):
		return fmt.Errorf("wait for new process %d to %s: %w: %s", c.pid, state, ErrChildExited, exit)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("wait for new process %d to %s: %w (killed: %s)", c.pid, state, err, exit)
	}
	return fmt.Errorf("wait for new process %d to %s: control socket: %w (killed: %s)", c.pid, state, err, exit)
}

// reap kills the process, waits for it once, closes the control socket,
// and returns how the process ended ("exit status 3", "signal: killed").
func (c *Child) reap() string {
	c.reapOnce.Do(func() {
		// Killing an exited, unreaped process is harmless and keeps its
		// real exit status.
		_ = c.proc.Kill()
		st, err := c.proc.Wait()
		if err != nil {
			c.exit = "wait: " + err.Error()
		} else {
			c.exit = st.String()
		}
		c.ctl.Close()
	})
	return c.exit
}

// fdConn wraps fd, a socket, as a *net.UnixConn and takes ownership of fd.
func fdConn(fd int) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), "upgrade-control")
	defer f.Close()
	c, err := net.FileConn(f) // a duplicate, switched to non-blocking mode
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("control socket is a %T, not a UNIX socket", c)
	}
	return uc, nil
}
