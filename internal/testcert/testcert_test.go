package testcert_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"

	"github.com/collectord/collectord/internal/testcert"
)

// The certificates verify against their CA for their purpose, with the
// names they promise; expired ones and another CA's do not.
func TestCertificates(t *testing.T) {
	ca, other := testcert.NewCA(t, "test"), testcert.NewCA(t, "other")
	b, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(b) {
		t.Fatalf("%s holds no PEM certificate", ca.CertFile)
	}
	verify := func(p testcert.Pair, usage x509.ExtKeyUsage, host string) error {
		t.Helper()
		if st, err := os.Stat(p.KeyFile); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("key file %s: %v, %v; want mode 0600", p.KeyFile, st.Mode(), err)
		}
		pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			t.Fatal(err)
		}
		_, err = pair.Leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}})
		return err
	}
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := verify(ca.Server(t, "server-"+host), x509.ExtKeyUsageServerAuth, host); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if err := verify(ca.Client(t, "client"), x509.ExtKeyUsageClientAuth, ""); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	var ie x509.CertificateInvalidError
	if err := verify(ca.ExpiredClient(t, "expired-client"), x509.ExtKeyUsageClientAuth, ""); !errors.As(err, &ie) || ie.Reason != x509.Expired {
		t.Errorf("expired client certificate: err = %v, want it expired", err)
	}
	if err := verify(ca.ExpiredServer(t, "expired-server"), x509.ExtKeyUsageServerAuth, "localhost"); !errors.As(err, &ie) || ie.Reason != x509.Expired {
		t.Errorf("expired server certificate: err = %v, want it expired", err)
	}
	var ua x509.UnknownAuthorityError
	if err := verify(other.Client(t, "stranger"), x509.ExtKeyUsageClientAuth, ""); !errors.As(err, &ua) {
		t.Errorf("another CA's certificate: err = %v, want an unknown authority", err)
	}
	if err := verify(ca.Client(t, "client-as-server"), x509.ExtKeyUsageServerAuth, ""); err == nil {
		t.Errorf("client certificate used by a server: verified, want refused")
	}
}
