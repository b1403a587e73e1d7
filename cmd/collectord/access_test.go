package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/internal/testcert"
	"github.com/collectord/collectord/pkg/query"
)

// dialTLS connects to the daemon's query server trusting ca and
// presenting client, and returns the error, if any.
func dialTLS(t *testing.T, addr string, ca *testcert.CA, client testcert.Pair, token string) error {
	t.Helper()
	cfg, err := access.ClientTLS(ca.CertFile, client.CertFile, client.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := query.Dial(context.Background(), addr, query.DialOptions{TLSConfig: cfg, Token: token})
	if err == nil {
		c.Close()
	}
	return err
}

// copyFile puts src's contents at dst, replacing it as a renewal would.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		t.Fatal(err)
	}
}

// The query server's certificates, client CAs and tokens are read again on
// SIGHUP: after a renewal the new ones are in force, the old ones are not,
// and no restart was needed. A reload whose new files are broken fails and
// leaves the running process serving with what it had.
func TestQueryCredentialsReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	oldCA, newCA := testcert.NewCA(t, "old"), testcert.NewCA(t, "new")
	oldServer, newServer := oldCA.Server(t, "server"), newCA.Server(t, "server")
	oldClient, newClient := oldCA.Client(t, "client"), newCA.Client(t, "client")
	cert, key, clientCA, tokens := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "clients.pem"), filepath.Join(dir, "tokens")
	copyFile(t, oldServer.CertFile, cert)
	copyFile(t, oldServer.KeyFile, key)
	copyFile(t, oldCA.CertFile, clientCA)
	const oldToken, newToken = "old-token-0123456789", "new-token-0123456789"
	if err := os.WriteFile(tokens, []byte(oldToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := writeConfig(t, "query_tls_cert = \""+cert+"\"\nquery_tls_key = \""+key+"\"\nquery_tls_client_ca = \""+clientCA+"\"\nquery_token_file = \""+tokens+"\"\n")
	pidFile := filepath.Join(dir, "pid")
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{QueryAddr: "127.0.0.1:0", Args: []string{"--config", config, "--pid-file", pidFile}})
	g := trackGenerations(t, d, pidFile)
	addr := d.QueryAddr

	if err := dialTLS(t, addr, oldCA, oldClient, oldToken); err != nil {
		t.Fatalf("before the renewal: %v", err)
	}

	// Renew everything and reload.
	copyFile(t, newServer.CertFile, cert)
	copyFile(t, newServer.KeyFile, key)
	copyFile(t, newCA.CertFile, clientCA)
	if err := os.WriteFile(tokens, []byte(newToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g.upgrade(t)
	if err := dialTLS(t, addr, newCA, newClient, newToken); err != nil {
		t.Errorf("after the reload, new credentials: %v", err)
	}
	if err := dialTLS(t, addr, oldCA, newClient, newToken); err == nil || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("after the reload, a client trusting the old server CA: err = %v, want the server refused", err)
	}
	if err := dialTLS(t, addr, newCA, oldClient, newToken); err == nil {
		t.Error("after the reload, a client certificate from the old CA was accepted")
	}
	if err := dialTLS(t, addr, newCA, newClient, oldToken); !errors.Is(err, query.ErrUnauthorized) {
		t.Errorf("after the reload, the old token: err = %v, want ErrUnauthorized", err)
	}

	// A broken renewal: the new process fails, the old one serves on.
	if err := os.WriteFile(key, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	failedBefore := len(logEvents(d.Logs.String(), "upgrade failed; still serving"))
	if err := syscall.Kill(g.current(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	logs := d.Logs.WaitFor(t, "the failed reload", func(s string) bool {
		return len(logEvents(s, "upgrade failed; still serving")) > failedBefore
	})
	if !strings.Contains(logs, "query_tls_cert/query_tls_key/query_tls_client_ca") {
		t.Errorf("the failed reload's log does not name the configuration keys:\n%s", logs)
	}
	if err := dialTLS(t, addr, newCA, newClient, newToken); err != nil {
		t.Errorf("after a failed reload: %v", err)
	}
}

// collectord refuses a query address other hosts can reach unless TLS or a
// token guards it, or query_insecure says to go ahead.
func TestNonLoopbackQueryRefused(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(proctest.Collectord(t), "--socket", filepath.Join(dir, "c.sock"), "--ring", filepath.Join(dir, "ring"),
		"--ring-size", "1MiB", "--metrics-addr", "", "--query-socket", "", "--query-addr", "0.0.0.0:0")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "query_addr \"0.0.0.0:0\": not a loopback address") {
		t.Errorf("--query-addr 0.0.0.0:0: %v\n%s\nwant exit 2 naming query_addr", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ring")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused daemon created its ring: %v", err)
	}

	config := writeConfig(t, "query_insecure = true\n")
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{QueryAddr: "0.0.0.0:0", Args: []string{"--config", config}})
	if addr := d.QueryAddr; !strings.HasPrefix(addr, "0.0.0.0:") && !strings.HasPrefix(addr, "[::]:") {
		t.Errorf("with query_insecure the query server listens on %s", addr)
	}
	d.Stop(t)
}

// The rule holds for a query socket systemd passes too: its real address
// is checked, not the configuration's.
func TestNonLoopbackActivatedQueryRefused(t *testing.T) {
	dir := t.TempDir()
	listener, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4zero})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	cmd := exec.Command("sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, proctest.Collectord(t), "--socket", filepath.Join(dir, "c.sock"),
		"--ring", filepath.Join(dir, "ring"), "--ring-size", "1MiB", "--metrics-addr", "", "--query-socket", "")
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=query")
	cmd.ExtraFiles = []*os.File{passFile(t, listener, "query")}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a loopback address, and neither TLS nor a token guards it") {
		t.Errorf("activated with a query socket on %s: %v\n%s\nwant a refusal", listener.Addr(), err, out)
	}
}
