package main

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
	"golang.org/x/sys/unix"
)

// TestNotifySequence: run as systemd runs a Type=notify service with
// WatchdogSec= (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID naming the
// daemon), collectord tells the service manager, in this order: the two
// sockets it bound, into the fd store (FDSTORE=1, FDNAME=ingest with the
// bound datagram socket itself, FDNAME=query with the listening TCP
// socket); READY=1 with a STATUS; WATCHDOG=1 at half the timeout. On
// SIGHUP the old process says RELOADING=1 with the current MONOTONIC_USEC,
// then MAINPID=<new pid> with READY=1, and nothing after that; the new
// process, whose inherited WATCHDOG_PID named the old one, pings the
// watchdog; on SIGTERM it says STOPPING=1.
func TestNotifySequence(t *testing.T) {
	dir := t.TempDir()
	becomeSubreaper(t)
	n := listenNotify(t, filepath.Join(dir, "notify.sock"))
	pidFile := filepath.Join(dir, "collectord.pid")
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{
		QueryAddr: "127.0.0.1:0",
		Args:      append([]string{"--pid-file", pidFile}, argsAnonymousAll...),
		Env:       []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=200000"},
		Shell:     `WATCHDOG_PID=$$ exec "$0" "$@"`,
	})
	g := trackGenerations(t, d, pidFile)
	old := g.current()
	addr := d.QueryAddr

	// Start: the fd store, then READY=1, then watchdog pings.
	msgs := n.waitFor(t, "three WATCHDOG=1 from the first process", func(m []notifyMsg) bool {
		return countFrom(m, old, "WATCHDOG=1") >= 3
	})
	ingest := n.index(t, msgs, old, "FDSTORE=1", "FDNAME=ingest")
	if fds := msgs[ingest].fds; len(fds) != 1 || fds[0] != fmt.Sprintf("unix/dgram %s", d.Socket) {
		t.Errorf("FDNAME=ingest came with %q, want the datagram socket bound at %s", fds, d.Socket)
	}
	query := n.index(t, msgs, old, "FDSTORE=1", "FDNAME=query")
	if fds := msgs[query].fds; len(fds) != 1 || fds[0] != "tcp/listening "+addr {
		t.Errorf("FDNAME=query came with %q, want the TCP listener on %s", fds, addr)
	}
	ready := n.index(t, msgs, old, "READY=1")
	if !hasPrefixVar(msgs[ready].vars, "STATUS=") {
		t.Errorf("READY=1 without STATUS=: %q", msgs[ready].vars)
	}
	firstPing := n.index(t, msgs, old, "WATCHDOG=1")
	if !(ingest < query && query < ready && ready < firstPing) {
		t.Errorf("start sequence out of order: FDSTORE ingest #%d, FDSTORE query #%d, READY #%d, first WATCHDOG #%d\n%s",
			ingest, query, ready, firstPing, n)
	}

	// Upgrade.
	before := monotonicUsec(t)
	newPID := g.upgrade(t)
	after := monotonicUsec(t)
	msgs = n.waitFor(t, "two WATCHDOG=1 from the new process after MAINPID", func(m []notifyMsg) bool {
		main := indexOf(m, old, "MAINPID="+strconv.Itoa(newPID), "READY=1")
		return main >= 0 && countFrom(m[main:], newPID, "WATCHDOG=1") >= 2
	})
	reloading := n.index(t, msgs, old, "RELOADING=1")
	usec, err := strconv.ParseInt(varValue(msgs[reloading].vars, "MONOTONIC_USEC"), 10, 64)
	if err != nil || usec < before || usec > after {
		t.Errorf("RELOADING=1 with MONOTONIC_USEC %q, want CLOCK_MONOTONIC between SIGHUP (%d) and the end of the upgrade (%d)",
			varValue(msgs[reloading].vars, "MONOTONIC_USEC"), before, after)
	}
	handover := n.index(t, msgs, old, "MAINPID="+strconv.Itoa(newPID), "READY=1")
	if reloading > handover {
		t.Errorf("MAINPID (#%d) before RELOADING (#%d)", handover, reloading)
	}
	for i, m := range msgs[handover+1:] {
		if m.pid == old {
			t.Errorf("the old process spoke after handing over (#%d): %q", handover+1+i, m.vars)
		}
	}
	for _, m := range msgs {
		if m.pid == newPID && (slices.Contains(m.vars, "READY=1") || slices.Contains(m.vars, "FDSTORE=1")) {
			t.Errorf("the new process sent %q: READY and the fd store are the old process's to send", m.vars)
		}
	}

	// Stop.
	g.stop(t)
	msgs = n.waitFor(t, "STOPPING=1 from the new process", func(m []notifyMsg) bool {
		return indexOf(m, newPID, "STOPPING=1") >= 0
	})
	if i := indexOf(msgs, old, "STOPPING=1"); i >= 0 {
		t.Errorf("the old process sent STOPPING=1 (#%d) although it handed over rather than stopped", i)
	}
	n.close()
}

// notifyMsg is one datagram received on NOTIFY_SOCKET.
type notifyMsg struct {
	pid  int      // sender, from SCM_CREDENTIALS
	vars []string // the KEY=VALUE lines
	fds  []string // each passed descriptor described by describeFD
}

// notifyListener plays systemd's notification socket.
type notifyListener struct {
	path string
	conn *net.UnixConn
	done sync.WaitGroup

	mu      sync.Mutex
	msgs    []notifyMsg
	err     error
	changed chan struct{}
}

func listenNotify(t *testing.T, path string) *notifyListener {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1) })
	if err != nil {
		t.Fatal(err)
	}
	n := &notifyListener{path: path, conn: c}
	n.done.Go(n.receive)
	t.Cleanup(n.close)
	return n
}

func (n *notifyListener) close() {
	n.conn.Close()
	n.done.Wait()
}

// receive records every message; it closes every passed descriptor after
// describing it.
func (n *notifyListener) receive() {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(253*4)+unix.CmsgSpace(unix.SizeofUcred))
	for {
		nb, noob, flags, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return // closed
		}
		m := notifyMsg{vars: strings.Split(strings.TrimSuffix(string(buf[:nb]), "\n"), "\n")}
		var problem error
		if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			problem = fmt.Errorf("message truncated (flags %#x)", flags)
		}
		cmsgs, err := unix.ParseSocketControlMessage(oob[:noob])
		if err != nil {
			problem = err
		}
		for _, cm := range cmsgs {
			switch {
			case cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SCM_CREDENTIALS:
				if cred, err := unix.ParseUnixCredentials(&cm); err == nil {
					m.pid = int(cred.Pid)
				}
			case cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SCM_RIGHTS:
				fds, err := unix.ParseUnixRights(&cm)
				if err != nil {
					problem = err
				}
				for _, fd := range fds {
					m.fds = append(m.fds, describeFD(fd))
					unix.Close(fd)
				}
			}
		}
		n.mu.Lock()
		n.msgs = append(n.msgs, m)
		if problem != nil && n.err == nil {
			n.err = problem
		}
		if n.changed != nil {
			close(n.changed)
			n.changed = nil
		}
		n.mu.Unlock()
	}
}

// describeFD says what kind of socket fd is and where it is bound:
// "unix/dgram PATH", "tcp/listening HOST:PORT", or what else it is.
func describeFD(fd int) string {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return "not a socket: " + err.Error()
	}
	listening, _ := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "getsockname: " + err.Error()
	}
	switch a := sa.(type) {
	case *unix.SockaddrUnix:
		if typ == unix.SOCK_DGRAM {
			return "unix/dgram " + a.Name
		}
		return fmt.Sprintf("unix/type%d %s", typ, a.Name)
	case *unix.SockaddrInet4:
		if typ == unix.SOCK_STREAM && listening == 1 {
			return "tcp/listening " + net.JoinHostPort(net.IP(a.Addr[:]).String(), strconv.Itoa(a.Port))
		}
		return fmt.Sprintf("inet/type%d listening=%d port %d", typ, listening, a.Port)
	}
	return fmt.Sprintf("socket %T type %d", sa, typ)
}

// waitFor waits until cond holds for the messages received so far and
// returns them.
func (n *notifyListener) waitFor(t *testing.T, what string, cond func([]notifyMsg) bool) []notifyMsg {
	t.Helper()
	deadline := time.NewTimer(restartTimeout)
	defer deadline.Stop()
	for {
		n.mu.Lock()
		msgs, err := slices.Clone(n.msgs), n.err
		if n.changed == nil {
			n.changed = make(chan struct{})
		}
		changed := n.changed
		n.mu.Unlock()
		if err != nil {
			t.Fatalf("notification socket: %v", err)
		}
		if cond(msgs) {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; received:\n%s", restartTimeout, what, n)
		}
	}
}

// index is indexOf that fails the test when no message matches.
func (n *notifyListener) index(t *testing.T, msgs []notifyMsg, pid int, vars ...string) int {
	t.Helper()
	i := indexOf(msgs, pid, vars...)
	if i < 0 {
		t.Fatalf("no message from %d with %q; received:\n%s", pid, vars, n)
	}
	return i
}

func (n *notifyListener) String() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var b strings.Builder
	for i, m := range n.msgs {
		fmt.Fprintf(&b, "#%d pid %d: %q fds %q\n", i, m.pid, m.vars, m.fds)
	}
	return b.String()
}

// indexOf returns the first message from pid holding every one of vars,
// or -1.
func indexOf(msgs []notifyMsg, pid int, vars ...string) int {
	for i, m := range msgs {
		if m.pid != pid {
			continue
		}
		all := true
		for _, v := range vars {
			all = all && slices.Contains(m.vars, v)
		}
		if all {
			return i
		}
	}
	return -1
}

func countFrom(msgs []notifyMsg, pid int, v string) int {
	n := 0
	for _, m := range msgs {
		if m.pid == pid && slices.Contains(m.vars, v) {
			n++
		}
	}
	return n
}

func hasPrefixVar(vars []string, prefix string) bool {
	return slices.ContainsFunc(vars, func(v string) bool { return strings.HasPrefix(v, prefix) })
}

func varValue(vars []string, key string) string {
	for _, v := range vars {
		if val, ok := strings.CutPrefix(v, key+"="); ok {
			return val
		}
	}
	return ""
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}
