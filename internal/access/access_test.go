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
	if got, _, err := access.ReadTokens(writeFile(t, "0123456789abcdef-one\r\n\t0123456789abcdef-two \r\n", 0o600)); err != nil || len(got) != 2 || got[1] != "0123456789abcdef-two" {
		t.Errorf("CRLF lines: ReadTokens = %q, %v", got, err)
	}
	for mode, want := range map[os.FileMode]string{0o640: "", 0o644: "readable by every user", 0o666: "writable by every user"} {
		path := writeFile(t, "0123456789abcdef\n", 0o600)
		if err := os.Chmod(path, mode); err != nil { // not subject to the umask
			t.Fatal(err)
		}
		tokens, warn, err := access.ReadTokens(path)
		switch {
		case err != nil || len(tokens) != 1:
			t.Errorf("mode %#o: ReadTokens = %q, %v; want the token", mode, tokens, err)
		case want == "" && warn != "":
			t.Errorf("mode %#o: warn %q, want none", mode, warn)
		case want != "" && (!strings.Contains(warn, want) || !strings.Contains(warn, path)):
			t.Errorf("mode %#o: warn %q, want it to name the file and say %q", mode, warn, want)
		}
	}
	for body, want := range map[string]string{
		"":                     "no token",
		"\n \n":                "no token",
		"short\n":              "token of 5 bytes",
		"0123456789 abcdef\n":  "line 1: token contains ' '",
		"0123456789\tabcdef\n": "line 1: token contains '\\t'",
		"0123456789abcdéf\n":   "token contains",
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
	if cfg, err := access.ClientTLS(ca.CertFile, client.CertFile, client.KeyFile, "collectord.example"); err != nil || len(cfg.Certificates) != 1 || cfg.RootCAs == nil || cfg.ServerName != "collectord.example" || cfg.MinVersion != tls.VersionTLS13 {
		t.Errorf("ClientTLS: %v", err)
	}
	// No CA file: the system's roots (a nil pool), and no certificate.
	if cfg, err := access.ClientTLS("", "", "", ""); err != nil || cfg.RootCAs != nil || len(cfg.Certificates) != 0 {
		t.Errorf("ClientTLS with system roots: %v", err)
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
		{"client cert without key", func() error { _, err := access.ClientTLS("", client.CertFile, "", ""); return err }, client.CertFile + ": no key file"},
		{"client key without cert", func() error { _, err := access.ClientTLS("", "", client.KeyFile, ""); return err }, client.KeyFile + ": no certificate file"},
		{"client CA missing", func() error { _, err := access.ClientTLS("/nonexistent/ca.pem", "", "", ""); return err }, "/nonexistent/ca.pem"},
		{"key not PEM", func() error { _, err := access.ServerTLS(server.CertFile, notPEM, ""); return err }, notPEM},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}
