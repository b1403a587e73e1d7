package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/internal/testcert"
)

// The ring and its directory are readable by the daemon's user and the
// readers' group only: a member of the group reads the ring with --ring,
// anyone else gets a clear permission error (and may still ask the daemon).
func TestRingReadersGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running logctl as other users needs root")
	}
	const readers = 4242 // a group number no one is in
	dir := openDir(t)
	ring := filepath.Join(dir, "private", "ring")
	d := startDaemon(t, dir, proctest.DaemonOptions{Ring: ring, Args: []string{"--ring-group", "4242"}})
	d.Send(t, "secret")

	for path, want := range map[string]os.FileMode{ring: 0o640, filepath.Dir(ring): 0o750 | os.ModeDir} {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if gid := st.Sys().(*syscall.Stat_t).Gid; st.Mode() != want || gid != readers {
			t.Errorf("%s: mode %v group %d, want %v group %d", path, st.Mode(), gid, want, readers)
		}
	}

	member := &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{readers}}
	if r := logctlAs(t, member, "tail", "--ring", ring, "-o", "raw"); r.code != 0 || r.stdout != "secret\n" {
		t.Errorf("tail --ring as a member of the readers' group: exit %d, stdout %q, stderr %q; want the record", r.code, r.stdout, r.stderr)
	}
	other := &syscall.Credential{Uid: nobody, Gid: nobody}
	r := logctlAs(t, other, "tail", "--ring", ring, "-o", "raw")
	if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 ||
		!strings.Contains(r.stderr, "permission denied") || !strings.Contains(r.stderr, "read permission") {
		t.Errorf("tail --ring as a non-member: exit %d, stdout %q, stderr %q; want exit 1 and one line about read permission", r.code, r.stdout, r.stderr)
	}
	d.Stop(t)

	// A restart with another configuration applies it to the existing ring.
	d = startDaemon(t, dir, proctest.DaemonOptions{Ring: ring, Args: []string{"--ring-group", "4243"}})
	defer d.Stop(t)
	st, err := os.Stat(ring)
	if err != nil {
		t.Fatal(err)
	}
	if gid := st.Sys().(*syscall.Stat_t).Gid; gid != 4243 {
		t.Errorf("after restart with --ring-group 4243: ring group %d", gid)
	}
	if r := logctlAs(t, member, "tail", "--ring", ring, "-o", "raw"); r.code != 1 {
		t.Errorf("tail --ring as a member of the old group: exit %d, stdout %q; want refused", r.code, r.stdout)
	}
}

// logctl reaches a query server guarded by mutual TLS and a token with
// --tls-ca, --tls-cert, --tls-key and --token-file; with any of them wrong
// it fails at once with one line and prints no record, also with -f
// (credentials that do not verify are not retried).
func TestTailTLSAndToken(t *testing.T) {
	dir := openDir(t)
	ca, other := testcert.NewCA(t, "collectord"), testcert.NewCA(t, "other")
	server, client := ca.Server(t, "server"), ca.Client(t, "client")
	expired := ca.ExpiredClient(t, "expired")
	token, badToken := filepath.Join(dir, "token"), filepath.Join(dir, "bad-token")
	for path, tok := range map[string]string{token: "0123456789abcdef0123", badToken: "0123456789abcdef0124"} {
		if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(dir, "collectord.toml")
	body := fmt.Sprintf("query_tls_cert = %q\nquery_tls_key = %q\nquery_tls_client_ca = %q\nquery_token_file = %q\n",
		server.CertFile, server.KeyFile, ca.CertFile, token)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, proctest.DaemonOptions{Args: []string{"--config", config}})
	defer d.Stop(t)
	d.Send(t, "secret one", "secret two")

	good := []string{"--addr", d.QueryAddr, "--tls-ca", ca.CertFile, "--tls-cert", client.CertFile, "--tls-key", client.KeyFile, "--token-file", token}
	if out := ok(t, append([]string{"tail", "-o", "raw"}, good...)...); out != "secret one\nsecret two\n" {
		t.Errorf("with valid credentials: %q", out)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"plain TCP", []string{"--addr", d.QueryAddr, "--token-file", token}, "dial query server"},
		{"server CA not trusted", []string{"--addr", d.QueryAddr, "--tls-ca", other.CertFile, "--tls-cert", client.CertFile, "--tls-key", client.KeyFile, "--token-file", token}, "unknown authority"},
		{"no client certificate", []string{"--addr", d.QueryAddr, "--tls-ca", ca.CertFile, "--token-file", token}, "certificate required"},
		{"expired client certificate", []string{"--addr", d.QueryAddr, "--tls-ca", ca.CertFile, "--tls-cert", expired.CertFile, "--tls-key", expired.KeyFile, "--token-file", token}, "expired certificate"},
		{"wrong token", []string{"--addr", d.QueryAddr, "--tls-ca", ca.CertFile, "--tls-cert", client.CertFile, "--tls-key", client.KeyFile, "--token-file", badToken}, "unauthorized"},
		{"no token", []string{"--addr", d.QueryAddr, "--tls-ca", ca.CertFile, "--tls-cert", client.CertFile, "--tls-key", client.KeyFile}, "unauthorized"},
	} {
		for _, follow := range []bool{false, true} {
			args := append([]string{"tail", "-o", "raw"}, tc.args...)
			if follow {
				args = append(args, "-f")
			}
			r := logctl(t, args...)
			if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s (follow %v): exit %d, stdout %q, stderr %q; want exit 1, no output and one line mentioning %q",
					tc.name, follow, r.code, r.stdout, r.stderr, tc.want)
			}
		}
	}
	if r := logctl(t, "tail", "--ring", d.Ring, "--token-file", token); r.code != 2 {
		t.Errorf("--ring with --token-file: exit %d, want 2 (usage)", r.code)
	}
}
