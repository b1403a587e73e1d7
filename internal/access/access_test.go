package access_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/testcert"
)

func writeFile(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadTokens(t *testing.T) {
	path := writeFile(t, "\n  0123456789abcdef-one  \n\n0123456789abcdef-two\n", 0o600)
	got, warn, err := access.ReadTokens(path)
	if err != nil || warn != "" || len(got) != 2 || got[0] != "0123456789abcdef-one" || got[1] != "0123456789abcdef-two" {
		t.Errorf("ReadTokens = %q, %q, %v", got, warn, err)
	}
	if tok, _, err := access.ReadToken(path); err != nil || tok != "0123456789abcdef-one" {
		t.Errorf("ReadToken = %q, %v; want the first token", tok, err)
	}
	if _, warn, _ := access.ReadTokens(writeFile(t, "0123456789abcdef\n", 0o644)); !strings.Contains(warn, "readable by every user") {
		t.Errorf("world-readable file: warn = %q", warn)
	}
	for body, want := range map[string]string{
		"":                    "no token",
		"\n \n":               "no token",
		"short\n":             "token of 5 bytes",
		"0123456789 abcdef\n": "line 1: token contains ' '",
		"ok0123456789abcdef\n0123456789abcdef\x01\n": "line 2",
	} {
		if _, _, err := access.ReadTokens(writeFile(t, body, 0o600)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("tokens %q: err = %v, want it to mention %q", body, err, want)
		}
	}
	if _, _, err := access.ReadTokens(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: err = %v, want it to name the file", err)
	}
}

func TestServerAndClientTLS(t *testing.T) {
	ca := testcert.NewCA(t, "test")
	server, client := ca.Server(t, "server"), ca.Client(t, "client")
	cfg, err := access.ServerTLS(server.CertFile, server.KeyFile, ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert || cfg.ClientCAs == nil || cfg.MinVersion != tls.VersionTLS13 {
		t.Errorf("mutual TLS config: ClientAuth %v, ClientCAs %v, MinVersion %x", cfg.ClientAuth, cfg.ClientCAs, cfg.MinVersion)
	}
	if cfg, err := access.ServerTLS(server.CertFile, server.KeyFile, ""); err != nil || cfg.ClientAuth != tls.NoClientCert {
		t.Errorf("TLS without client CA: %v, ClientAuth %v", err, cfg.ClientAuth)
	}
	if cfg, err := access.ClientTLS(ca.CertFile, client.CertFile, client.KeyFile, ""); err != nil || len(cfg.Certificates) != 1 || cfg.RootCAs == nil {
		t.Errorf("ClientTLS: %v", err)
	}

	notPEM := writeFile(t, "hello\n", 0o600)
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"missing cert", func() error { _, err := access.ServerTLS("/nonexistent/c.pem", server.KeyFile, ""); return err }, "/nonexistent/c.pem"},
		{"key of another cert", func() error { _, err := access.ServerTLS(server.CertFile, client.KeyFile, ""); return err }, "does not match"},
		{"CA not PEM", func() error { _, err := access.ServerTLS(server.CertFile, server.KeyFile, notPEM); return err }, "no PEM certificate"},
		{"client cert without key", func() error { _, err := access.ClientTLS("", client.CertFile, "", ""); return err }, "both"},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}
