package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/fault"
	"github.com/collectord/collectord/internal/proctest"
)

// faultDaemon returns collectord built with the faultinject tag, whose
// ingest loop can be wedged and whose takeover can be slowed
// (internal/fault).
func faultDaemon(t *testing.T) string {
	t.Helper()
	return proctest.Binary(t, "github.com/collectord/collectord/cmd/collectord", "faultinject")
}

// TestWatchdogFollowsIngest: under systemd's watchdog, collectord pings
// while its ingest loop makes progress, including while the socket is idle
// for many times the stall limit, and stops pinging once the loop is
// wedged; /readyz says the same.
func TestWatchdogFollowsIngest(t *testing.T) {
	bin := faultDaemon(t)
	dir := t.TempDir()
	n := listenNotify(t, filepath.Join(dir, "notify.sock"))
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{
		Binary:      bin,
		MetricsAddr: "127.0.0.1:0",
		Env:         []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=200000", "COLLECTORD_FAULT_STALL_LIMIT=300ms"},
		Shell:       `WATCHDOG_PID=$$ exec "$0" "$@"`,
	})
	pid := d.PID()
	metrics := dialHTTP(t, d.MetricsAddr)

	// Idle: ten pings at 100 ms are a second without a datagram, over
	// three stall limits.
	n.waitFor(t, "ten WATCHDOG=1 from an idle daemon", func(m []notifyMsg) bool { return countFrom(m, pid, "WATCHDOG=1") >= 10 })
	if code, body := metrics.get(t, "/readyz"); code != 200 {
		t.Errorf("idle: /readyz = %d %q, want 200", code, body)
	}
	d.Send(t, "before the wedge")

	// Wedged: the loop blocks on the datagram it is storing.
	c := proctest.DialDatagram(t, d.Socket)
	if _, err := c.Write([]byte(fault.WedgeMessage)); err != nil {
		t.Fatal(err)
	}
	warnings := func(s string) int { return strings.Count(s, `"msg":"not pinging the watchdog"`) }
	d.Logs.WaitFor(t, "three skipped watchdog pings", func(s string) bool { return warnings(s) >= 3 })
	all := func([]notifyMsg) bool { return true }
	pings := countFrom(n.waitFor(t, "", all), pid, "WATCHDOG=1")
	logs := d.Logs.WaitFor(t, "two more skipped pings", func(s string) bool { return warnings(s) >= 5 })
	if got := countFrom(n.waitFor(t, "", all), pid, "WATCHDOG=1"); got != pings {
		t.Errorf("the wedged daemon pinged the watchdog %d more times", got-pings)
	}
	if !strings.Contains(logs, "ingest loop stuck on one batch") {
		t.Errorf("the skipped pings do not say why:\n%s", logs)
	}
	if code, body := metrics.get(t, "/readyz"); code != 503 || !strings.Contains(body, "stuck") {
		t.Errorf("wedged: /readyz = %d %q, want 503 saying the loop is stuck", code, body)
	}
	if code, _ := metrics.get(t, "/healthz"); code != 200 {
		t.Errorf("wedged: /healthz = %d, want 200 (the process answers)", code)
	}
	// A wedged loop cannot stop; systemd would kill it too.
	d.Signal(t, syscall.SIGKILL)
	<-d.Done()
}

// TestReadyzDuringHandover: while an upgrade hands the ring to a new
// process, the old one has stopped reading; a client still connected to
// its metrics server is told 503, and once the new process serves, a new
// connection is told 200.
func TestReadyzDuringHandover(t *testing.T) {
	bin := faultDaemon(t)
	dir := t.TempDir()
	becomeSubreaper(t)
	pidFile := filepath.Join(dir, "collectord.pid")
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{
		Binary:      bin,
		MetricsAddr: "127.0.0.1:0",
		Args:        []string{"--pid-file", pidFile},
		// The new process waits a second after the old one released
		// the ring: the window in which nobody ingests.
		Env: []string{"COLLECTORD_FAULT_TAKEOVER_DELAY=1s"},
	})
	g := trackGenerations(t, d, pidFile)
	old := dialHTTP(t, d.MetricsAddr)
	if code, body := old.get(t, "/readyz"); code != 200 {
		t.Fatalf("before the upgrade: /readyz = %d %q", code, body)
	}

	u := g.startUpgrade(t)
	deadline := time.Now().Add(proctest.Timeout)
	var codes []int
	for {
		code, _, err := old.tryGet("/readyz")
		if err != nil {
			t.Fatalf("the old process closed the connection before answering 503 (answers so far %v): %v", codes, err)
		}
		if len(codes) == 0 || codes[len(codes)-1] != code {
			codes = append(codes, code)
		}
		if code == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old process answered /readyz with %v during the handover, never 503", codes)
		}
		time.Sleep(5 * time.Millisecond) // polling a server, not waiting for one
	}
	g.awaitUpgrade(t, u)
	if code, body := dialHTTP(t, d.MetricsAddr).get(t, "/readyz"); code != 200 {
		t.Errorf("after the upgrade: /readyz = %d %q, want 200 from the new process", code, body)
	}
	g.stop(t)
}

// httpConn is one keep-alive HTTP/1.1 connection: every request goes to
// the process that accepted it.
type httpConn struct {
	nc net.Conn
	br *bufio.Reader
}

func dialHTTP(t *testing.T, addr string) *httpConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &httpConn{nc: nc, br: bufio.NewReader(nc)}
}

// tryGet sends GET path and returns the status and body.
func (c *httpConn) tryGet(path string) (int, string, error) {
	c.nc.SetDeadline(time.Now().Add(proctest.Timeout))
	if _, err := fmt.Fprintf(c.nc, "GET %s HTTP/1.1\r\nHost: collectord\r\n\r\n", path); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func (c *httpConn) get(t *testing.T, path string) (int, string) {
	t.Helper()
	code, body, err := c.tryGet(path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return code, body
}
