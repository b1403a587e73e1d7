package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/query"
)

// tailRaw runs `logctl tail -o raw` against addr and returns its output.
func tailRaw(t *testing.T, addr string, args ...string) string {
	t.Helper()
	out, err := exec.Command(proctest.Logctl(t), append([]string{"tail", "-o", "raw", "--addr", addr}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("logctl tail --addr %s: %v\n%s", addr, err, out)
	}
	return string(out)
}

// TestLocalQuerySocket: the daemon binds its local query socket beside the
// ring: mode 0666, in a directory it makes 0751 as root (users reach the
// socket, only readers list the directory). The file outlives a crash, and
// the next start replaces it; an in-place upgrade hands the socket over,
// file and all; a regular file in its place stops the daemon, naming it.
func TestLocalQuerySocket(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	sock := filepath.Join(dir, "query.sock")
	pidFile := filepath.Join(t.TempDir(), "pid")
	opts := proctest.DaemonOptions{QuerySocket: sock, Args: []string{"--pid-file", pidFile}}
	d := proctest.StartDaemon(t, dir, opts)
	if d.QuerySocket != sock {
		t.Errorf("the daemon says its query socket is %q, want %q", d.QuerySocket, sock)
	}
	modes := map[string]os.FileMode{sock: os.ModeSocket | 0o666}
	if os.Geteuid() == 0 {
		modes[dir] = os.ModeDir | 0o751
	}
	for path, want := range modes {
		if st, err := os.Stat(path); err != nil || st.Mode() != want {
			t.Errorf("%s: %v %v, want mode %v", path, st.Mode(), err, want)
		}
	}
	d.Send(t, "<13>t: one")
	if out := tailRaw(t, query.UnixPrefix+sock); out != "one\n" {
		t.Errorf("over the local socket: %q", out)
	}

	d.Signal(t, syscall.SIGKILL)
	<-d.Done()
	d = proctest.StartDaemon(t, dir, opts)
	g := trackGenerations(t, d, pidFile)
	d.Send(t, "<13>t: two")
	g.upgrade(t)
	d.Send(t, "<13>t: three")
	if out := tailRaw(t, query.UnixPrefix+sock, "-n", "3"); out != "one\ntwo\nthree\n" {
		t.Errorf("over the local socket after a crash and an upgrade: %q", out)
	}
	if err := syscall.Kill(g.current(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-d.Done()

	if err := os.Remove(sock); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sock, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(proctest.Collectord(t), "--socket", d.Socket, "--ring", d.Ring, "--query-socket", sock,
		"--query-addr", "", "--metrics-addr", "").CombinedOutput()
	if err == nil || !strings.Contains(string(out), sock+" exists and is not a socket") {
		t.Errorf("daemon on a regular file: %v\n%s", err, out)
	}
}

// TestLocalQuerySocketActivated: a UNIX stream socket passed as
// "query-local" (a .socket unit's ListenStream= with
// FileDescriptorName=query-local) is served, and the daemon binds no
// socket of its own.
func TestLocalQuerySocketActivated(t *testing.T) {
	dir := t.TempDir()
	passed := filepath.Join(dir, "passed.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: passed, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	own := filepath.Join(dir, "own.sock")
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{
		QuerySocket: own,
		Shell:       `LISTEN_PID=$$ exec "$0" "$@"`,
		Env:         []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=query-local"},
		Files:       []*os.File{passFile(t, ln, "query-local")},
	})
	defer d.Stop(t)
	d.Send(t, "<13>t: hello")
	if out := tailRaw(t, query.UnixPrefix+passed); out != "hello\n" {
		t.Errorf("over the passed socket: %q", out)
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Errorf("the daemon bound %s though it was passed a socket: %v", own, err)
	}
}

// TestUnreachableSocketDirWarned: as root, a local query socket in a
// directory collectord did not make and that other users cannot search
// (left by an older setup, say) is reported at start, naming the
// directory; a plain user's logctl says where to look.
func TestUnreachableSocketDirWarned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the warning is for a daemon running as root")
	}
	dir := filepath.Join(t.TempDir(), "run")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	d := proctest.StartDaemon(t, t.TempDir(), proctest.DaemonOptions{QuerySocket: filepath.Join(dir, "query.sock")})
	defer d.Stop(t)
	if !strings.Contains(d.Logs.String(), "other users cannot reach the local query socket") || !strings.Contains(d.Logs.String(), dir) {
		t.Errorf("no warning naming %s in the daemon's log:\n%s", dir, d.Logs.String())
	}
	// The plain user is told where to look.
	cmd := exec.Command(proctest.Logctl(t), "tail", "-n", "1", "--addr", query.UnixPrefix+d.QuerySocket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied (this user may not reach the daemon's local socket or its directory") {
		t.Errorf("logctl tail as uid 65534: %v\n%s", err, out)
	}
}
