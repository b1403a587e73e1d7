package proctest

import (
	"bufio"
	"cmp"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// StopTimeout is the shipped unit's TimeoutStopSec: after it systemd
// kills a daemon that did not stop on SIGTERM. Daemon.Stop requires a
// clean exit within it. (How fast the daemon stops is measured by
// bench/upgrade, not asserted.)
const StopTimeout = 10 * time.Second

// DaemonOptions say how StartDaemon runs collectord. The zero value runs
// it with a 1MiB ring, no query server (neither TCP nor local socket) and
// no metrics server.
type DaemonOptions struct {
	// Binary is the collectord binary to run; default Collectord(t).
	// Tests that need a special build get it from Binary.
	Binary string
	// Ring is the ring file's path; default "ring" in the daemon's
	// directory.
	Ring string
	// RingSize is --ring-size; default "1MiB".
	RingSize string
	// QueryAddr is --query-addr; default "", no query server.
	// "127.0.0.1:0" picks a free port: Daemon.QueryAddr says which.
	QueryAddr string
	// QuerySocket is --query-socket, the local query socket's path;
	// default "", none.
	QuerySocket string
	// MetricsAddr is --metrics-addr; default "", no metrics server.
	MetricsAddr string
	// Args are more flags, after those the fields above make: a flag
	// given again here wins.
	Args []string
	// Env is added to the test's environment.
	Env []string
	// Shell, if set, runs `sh -c Shell collectord flags...`, for variables
	// that must name the daemon's own pid: `LISTEN_PID=$$ exec "$0" "$@"`.
	Shell string
	// Files are inherited as descriptors 3, 4, ...
	Files []*os.File
}

// Daemon is a collectord process that StartDaemon started.
type Daemon struct {
	Socket      string  // the datagram socket: "c.sock" in the daemon's directory
	Ring        string  // the ring file
	QueryAddr   string  // the query server's address, from the ready line; "" if none
	QuerySocket string  // the local query socket's path, from the ready line; "" if none
	MetricsAddr string  // the metrics server's address, from the ready line; "" if none
	Logs        *Output // its stderr (JSON log lines), line by line

	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited and its stderr is closed
	err  error         // its exit status, once done is closed
}

// readyLine is what the tests read from the daemon's "collectord ready"
// log line.
type readyLine struct {
	Msg         string `json:"msg"`
	QueryAddr   string `json:"query_addr"`
	QuerySocket string `json:"query_socket"`
	MetricsAddr string `json:"metrics_addr"`
}

// StartDaemon runs collectord (built by Collectord) with its socket and,
// unless o says otherwise, its ring in dir, and waits until it logs
// "collectord ready". The test fails if it exits before, is not ready
// within Timeout, or is ready without the query or metrics server o asks
// for. The test's cleanup kills it if the test did not stop it.
func StartDaemon(t testing.TB, dir string, o DaemonOptions) *Daemon {
	t.Helper()
	bin := o.Binary
	if bin == "" {
		bin = Collectord(t)
	}
	d := &Daemon{
		Socket: filepath.Join(dir, "c.sock"),
		Ring:   cmp.Or(o.Ring, filepath.Join(dir, "ring")),
		Logs:   new(Output),
		done:   make(chan struct{}),
	}
	args := append([]string{"--socket", d.Socket, "--ring", d.Ring, "--ring-size", cmp.Or(o.RingSize, "1MiB"),
		"--query-addr", o.QueryAddr, "--query-socket", o.QuerySocket, "--metrics-addr", o.MetricsAddr}, o.Args...)
	if o.Shell != "" {
		d.cmd = exec.Command("sh", append([]string{"-c", o.Shell, bin}, args...)...)
	} else {
		d.cmd = exec.Command(bin, args...)
	}
	d.cmd.Env = append(os.Environ(), o.Env...)
	d.cmd.ExtraFiles = o.Files
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan readyLine, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		lines.Buffer(nil, 1<<20)
		sent := false
		for lines.Scan() {
			d.Logs.Write(append(lines.Bytes(), '\n'))
			var l readyLine
			if !sent && json.Unmarshal(lines.Bytes(), &l) == nil && l.Msg == "collectord ready" {
				ready <- l
				sent = true
			}
		}
		if err := lines.Err(); err != nil {
			d.Logs.Write([]byte("proctest: reading collectord's stderr: " + err.Error() + "\n"))
		}
		if !sent {
			close(ready)
		}
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
			return
		default:
		}
		d.cmd.Process.Kill()
		select {
		case <-d.done:
		case <-time.After(Timeout):
			// An upgrade's successor the test did not know of holds it.
			t.Errorf("collectord %d, killed at the end of the test: its stderr is still open after %v", d.PID(), Timeout)
		}
	})
	select {
	case l, ok := <-ready:
		if !ok {
			<-d.done
			t.Fatalf("collectord did not become ready (%v):\n%s", d.err, d.Logs)
		}
		if (o.QueryAddr != "" && l.QueryAddr == "") || (o.QuerySocket != "" && l.QuerySocket == "") || (o.MetricsAddr != "" && l.MetricsAddr == "") {
			t.Fatalf("collectord is ready without the query server on %q and %q or the metrics server on %q it was given:\n%s",
				o.QueryAddr, o.QuerySocket, o.MetricsAddr, d.Logs)
		}
		d.QueryAddr, d.QuerySocket, d.MetricsAddr = l.QueryAddr, l.QuerySocket, l.MetricsAddr
	case <-time.After(Timeout):
		t.Fatalf("collectord not ready after %v:\n%s", Timeout, d.Logs)
	}
	return d
}

// PID returns the process id of the daemon StartDaemon started. After an
// in-place upgrade another process serves; this one has exited.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Signal sends sig to the daemon, failing the test if it cannot.
func (d *Daemon) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to collectord: %v\n%s", sig, err, d.Logs)
	}
}

// Done is closed when the daemon has exited and its stderr is closed,
// which, after in-place upgrades, is when the last of its successors,
// which inherit its stderr, has exited too.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Err returns the daemon's exit status once Done is closed: nil for 0.
func (d *Daemon) Err() error {
	<-d.done
	return d.err
}

// Stop sends SIGTERM and requires the daemon to exit 0 within StopTimeout.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM) // an exited daemon shows below
	select {
	case <-d.done:
		if d.err != nil {
			t.Fatalf("collectord exited with %v:\n%s", d.err, d.Logs)
		}
	case <-time.After(StopTimeout):
		t.Fatalf("collectord did not exit within %v of SIGTERM:\n%s", StopTimeout, d.Logs)
	}
}

// Send writes each message as one datagram on a new socket and waits until
// the daemon has stored them all. It returns the sequence number of the
// first. Nobody else may send meanwhile.
func (d *Daemon) Send(t testing.TB, msgs ...string) uint64 {
	t.Helper()
	_, head := RingState(t, d.Ring)
	c := DialDatagram(t, d.Socket)
	for _, m := range msgs {
		if _, err := c.Write([]byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	WaitHead(t, d.Ring, head+uint64(len(msgs)))
	return head
}

// Logger runs util-linux logger against the daemon with args, as cred
// unless it is nil, waits until the daemon has stored its record and
// returns logger's pid and the record's sequence number. Nobody else may
// send meanwhile. Without logger the test is skipped (see NeedTool).
func (d *Daemon) Logger(t testing.TB, cred *syscall.Credential, args ...string) (pid int, seq uint64) {
	t.Helper()
	logger := NeedTool(t, "logger")
	_, head := RingState(t, d.Ring)
	cmd := exec.Command(logger, append([]string{"-u", d.Socket}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger %q: %v %s", args, err, out)
	}
	WaitHead(t, d.Ring, head+1)
	return cmd.Process.Pid, head
}

// DialDatagram connects a datagram socket to the socket at path, as a
// client process does, and closes it when the test ends. Writes block
// while the receiver's queue is full.
func DialDatagram(t testing.TB, path string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// FreePort returns a loopback address nothing listens on now.
func FreePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
