package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/dgram"
	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/record"
)

// TestRestartSocketActivated: the test plays systemd with a .socket unit.
// It owns the datagram socket (SO_PASSCRED on, bound before any daemon runs)
// and the TCP query listener, and runs collectord six times in a row with
// them passed as LISTEN_FDS (fd 3 "ingest", fd 4 "query"), stopping each
// with SIGTERM before starting the next. Meanwhile datagrams wait in the
// socket's queue and connections in the listener's backlog: every datagram
// of the blocking senders is stored exactly once and in order, no
// connection is refused, and logctl follows across every restart without a
// duplicate, a gap or a loss notice.
func TestRestartSocketActivated(t *testing.T) {
	const instances = 6
	// Built now: once the senders run, each daemon must come up in time.
	proctest.Collectord(t)
	proctest.Logctl(t)
	dir := t.TempDir()
	ingest, err := dgram.Listen(filepath.Join(dir, "c.sock"), dgram.ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ingest.Close()
	listener, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	addr := listener.Addr().String()
	files := []*os.File{passFile(t, ingest, "ingest"), passFile(t, listener, "query")}
	activated := proctest.DaemonOptions{
		RingSize: "64MiB",
		Shell:    `LISTEN_PID=$$ exec "$0" "$@"`,
		Env:      []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=ingest:query"},
		Files:    files,
		Args:     argsAnonymousAll,
	}

	var d *proctest.Daemon
	l := startLoad(t, filepath.Join(dir, "c.sock"), 3, 1)
	p := startProber(addr)
	f := startFollower(t, addr)
	for i := range instances {
		d = proctest.StartDaemon(t, dir, activated)
		if i == 0 {
			f.waitSeq(t, 300)
		}
		// Let this instance ingest, and the follower reconnect to it and
		// print what it stored, before stopping it.
		ring := openRing(t, d.Ring)
		f.waitSeq(t, ring.Head()+1000)
		ring.Close()
		d.Stop(t)
		if _, err := os.Stat(d.Socket); err != nil {
			t.Fatalf("instance %d removed the passed socket's file: %v", i, err)
		}
	}
	// The senders go on while no daemon runs; the last instance drains
	// the queue.
	d = proctest.StartDaemon(t, dir, activated)
	ring := openRing(t, d.Ring)
	l.stop(t)
	p.stop()
	f.waitSeq(t, drain(t, ring, d.Socket))
	f.stop(t)
	d.Stop(t)

	recs := proctest.ReadRing(t, d.Ring)
	checkStored(t, recs, l.senders)
	f.check(t, recs)
	p.check(t)
	l.report(t)
	p.report(t)
	t.Logf("follower: printed %d records across %d daemon instances", len(f.seqs), instances+1)
}

// passFile returns a duplicate of c's descriptor as an *os.File for
// exec.Cmd.ExtraFiles. os.NewFile on the non-blocking descriptor keeps
// exec's call to Fd from switching the shared socket to blocking mode.
func passFile(t *testing.T, c syscall.Conn, name string) *os.File {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	var dupErr error
	if err := rc.Control(func(s uintptr) { fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil || dupErr != nil {
		t.Fatalf("dup %s: %v %v", name, err, dupErr)
	}
	f := os.NewFile(uintptr(fd), name)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestSystemdSocketActivate: started by systemd's own socket activation
// tool, collectord serves the datagram socket it was passed (named
// "ingest" in LISTEN_FDNAMES): the datagram that woke the tool up, queued
// before collectord ran, and one sent once it serves are both stored; the
// daemon says it used the passed socket, binds no socket file of its own,
// leaves the passed socket's file alone when it stops, and turns on
// SO_PASSCRED on the passed socket.
func TestSystemdSocketActivate(t *testing.T) {
	tool := proctest.NeedTool(t, "systemd-socket-activate")
	dir := t.TempDir()
	passed := filepath.Join(dir, "activated.sock")
	own := filepath.Join(dir, "c.sock")
	ring := filepath.Join(dir, "ring")
	// systemd-socket-activate passes only the variables named with -E.
	cmd := exec.Command(tool, "--datagram", "--listen", passed, "--fdname", "ingest", "-E", "GORACE",
		proctest.Collectord(t), "--socket", own, "--ring", ring, "--ring-size", "1MiB", "--query-addr", "", "--query-socket", "", "--metrics-addr", "",
		"--log-level", "debug")
	logs := new(proctest.Output)
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var exitErr error
	exited := make(chan struct{})
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	// The tool binds the socket, says so, and waits for traffic before it
	// executes collectord in its own process (LISTEN_PID is its pid).
	logs.WaitFor(t, "systemd-socket-activate to listen", func(s string) bool {
		return strings.Contains(s, "Listening on")
	})
	conn := proctest.DialDatagram(t, passed)
	if _, err := conn.Write([]byte("<13>activation: woke it up")); err != nil {
		t.Fatal(err)
	}
	text := logs.WaitFor(t, "collectord ready", func(s string) bool {
		return len(logEvents(s, "collectord ready")) > 0
	})
	if _, err := conn.Write([]byte("<13>activation: while serving")); err != nil {
		t.Fatal(err)
	}
	r := openRing(t, ring)
	waitStored(t, r, 2)

	var usedIngest bool
	for _, e := range logEvents(text, "using passed socket") {
		usedIngest = usedIngest || e["name"] == "ingest"
	}
	if !usedIngest {
		t.Errorf("collectord did not log that it used the passed ingest socket:\n%s", text)
	}
	if _, err := os.Lstat(own); !os.IsNotExist(err) {
		t.Errorf("collectord bound its own socket file %s although it was passed one (stat: %v)", own, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		if exitErr != nil {
			t.Fatalf("collectord exited with %v\n%s", exitErr, logs)
		}
	case <-time.After(restartTimeout):
		t.Fatalf("collectord did not stop on SIGTERM\n%s", logs)
	}
	if _, err := os.Lstat(passed); err != nil {
		t.Errorf("collectord removed the passed socket's file, which systemd owns: %v", err)
	}

	recs := proctest.ReadRing(t, ring)
	var got []string
	for _, rec := range recs {
		got = append(got, string(rec.Message))
	}
	if want := "woke it up|while serving"; strings.Join(got, "|") != want {
		t.Fatalf("ring holds %q, want %q", got, want)
	}
	// The tool cannot set SO_PASSCRED (a .socket unit's PassCredentials=),
	// so the datagram queued before collectord ran has no credentials;
	// collectord turns the option on for the passed socket, so the next
	// one has them.
	if creds := recs[1].Flags&record.FlagCreds != 0; !creds || recs[1].PID != uint32(os.Getpid()) {
		t.Errorf("datagram sent while serving: credentials %v pid %d, want the test's pid %d", creds, recs[1].PID, os.Getpid())
	}
}
