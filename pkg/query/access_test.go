//go:build linux

package query

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/testcert"
)

// tlsFixture is a ring with records behind a TLS query server, and the
// certificates around it.
type tlsFixture struct {
	ts       *testServer
	ca       *testcert.CA // signed the server's and the good client's certificates
	otherCA  *testcert.CA // signed nothing the server trusts
	client   testcert.Pair
	expired  testcert.Pair
	stranger testcert.Pair // a client certificate from otherCA
}

// newTLSFixture starts a server with opts and TLS, mutual if asked.
func newTLSFixture(t *testing.T, mutual bool, opts Options) *tlsFixture {
	t.Helper()
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	f := &tlsFixture{ca: testcert.NewCA(t, "collectord-test"), otherCA: testcert.NewCA(t, "elsewhere")}
	server := f.ca.Server(t, "server")
	f.client = f.ca.Client(t, "alice")
	f.expired = f.ca.ExpiredClient(t, "bob")
	f.stranger = f.otherCA.Client(t, "mallory")
	clientCA := ""
	if mutual {
		clientCA = f.ca.CertFile
	}
	cfg, err := access.ServerTLS(server.CertFile, server.KeyFile, clientCA)
	if err != nil {
		t.Fatal(err)
	}
	opts.TLSConfig = cfg
	f.ts = newServerForTest(t, tr.r, opts)
	return f
}

// clientTLS is the configuration of a client trusting ca and presenting
// pair (if its files are set).
func clientTLS(t *testing.T, ca *testcert.CA, pair testcert.Pair) *tls.Config {
	t.Helper()
	cfg, err := access.ClientTLS(ca.CertFile, pair.CertFile, pair.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// latest asks for the latest n records and returns how many arrived.
func latest(t *testing.T, c *Client, n int64) int {
	t.Helper()
	col := newCollector(t)
	if _, err := c.Query(context.Background(), Request{N: &n}, col.handler()); err != nil {
		t.Fatal(err)
	}
	seqs, _, _ := col.snapshot()
	return len(seqs)
}

// refusedRaw opens a TLS connection with cfg, sends a hello with token
// and a query, and returns every frame the server sent before it closed:
// a client refused in the TLS handshake must get none (no h frame with the
// ring's state, no batch), one refused for its token only X.
func refusedRaw(t *testing.T, addr string, cfg *tls.Config, token string) (frames []FrameType, err error) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(20 * time.Second))
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	tc := tls.Client(nc, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	tc.Write(AppendFrame(nil, FrameHello, marshalJSON(Hello{Protocol: Version, Client: "test", Token: token})))
	tc.Write(AppendFrame(nil, FrameQuery, []byte(`{"id":1,"n":10}`)))
	fr := NewFrameReader(tc, MaxServerFrame)
	for {
		ft, _, err := fr.Next()
		if err != nil {
			return frames, err
		}
		frames = append(frames, ft)
	}
}

func TestTLSServer(t *testing.T) {
	f := newTLSFixture(t, false, Options{})
	c := dialForTest(t, f.ts.addr, DialOptions{TLSConfig: clientTLS(t, f.ca, testcert.Pair{})})
	if got := latest(t, c, 10); got != 10 {
		t.Errorf("over TLS: got %d records, want 10", got)
	}

	// A client that does not trust the server's CA refuses it.
	_, err := Dial(context.Background(), f.ts.addr, DialOptions{TLSConfig: clientTLS(t, f.otherCA, testcert.Pair{})})
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) || !strings.Contains(err.Error(), "tls handshake") || !strings.Contains(err.Error(), "unknown authority") {
		t.Errorf("client trusting another CA: err = %v, want a TLS handshake error about an unknown authority", err)
	}
	waitFor(t, "the TLS failure counted", func() bool { return f.ts.Stats().AuthFailuresTLS == 1 })

	// A plain-TCP client is told, in the protocol, that it needs TLS,
	// and nothing else.
	if _, err := Dial(context.Background(), f.ts.addr, DialOptions{}); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "speaks TLS") {
		t.Errorf("plain TCP client to a TLS server: err = %v, want ErrUnauthorized saying the server speaks TLS", err)
	}
	rc := dialRaw(t, f.ts.addr)
	rc.send(FrameHello, `{"protocol":1}`)
	rc.send(FrameQuery, `{"id":1,"n":10}`)
	rc.expectError(CodeUnauthorized)
	rc.expectClosed()
	waitFor(t, "TLS failures counted", func() bool { return f.ts.Stats().AuthFailuresTLS == 3 })
	if n := f.ts.Stats().RecordsSent; n != 10 {
		t.Errorf("server sent %d records in all, want only the trusting client's 10", n)
	}
}

// A client refuses a server whose certificate has expired.
func TestTLSServerCertificateExpired(t *testing.T) {
	tr := newRingForTest(t, 1<<20)
	ca := testcert.NewCA(t, "collectord-test")
	server := ca.ExpiredServer(t, "server")
	cfg, err := access.ServerTLS(server.CertFile, server.KeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	ts := newServerForTest(t, tr.r, Options{TLSConfig: cfg})
	_, err = Dial(context.Background(), ts.addr, DialOptions{TLSConfig: clientTLS(t, ca, testcert.Pair{})})
	var cve *tls.CertificateVerificationError
	if !errors.As(err, &cve) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("server certificate expired: err = %v, want a certificate verification error saying it expired", err)
	}
}

func TestMutualTLS(t *testing.T) {
	f := newTLSFixture(t, true, Options{})
	c := dialForTest(t, f.ts.addr, DialOptions{TLSConfig: clientTLS(t, f.ca, f.client)})
	if got := latest(t, c, 10); got != 10 {
		t.Errorf("valid client certificate: got %d records, want 10", got)
	}
	for _, tc := range []struct {
		name string
		cert testcert.Pair
		want string // in the client's error
	}{
		{"no client certificate", testcert.Pair{}, "certificate required"},
		{"expired client certificate", f.expired, "expired certificate"},
		{"client certificate from another CA", f.stranger, "unknown certificate authority"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientTLS(t, f.ca, tc.cert)
			if len(cfg.Certificates) > 0 {
				// Present the certificate even where Go's client would
				// hold back one the server's CA list does not name.
				cert := &cfg.Certificates[0]
				cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
			}
			before := f.ts.Stats().AuthFailuresTLS
			_, err := Dial(context.Background(), f.ts.addr, DialOptions{TLSConfig: cfg})
			if err == nil || !strings.Contains(err.Error(), "tls handshake") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Dial: err = %v, want a TLS handshake error mentioning %q", err, tc.want)
			}
			frames, err := refusedRaw(t, f.ts.addr, cfg, "")
			if len(frames) != 0 || err == nil {
				t.Errorf("refused client received frames %v (then %v); want none", frames, err)
			}
			waitFor(t, "the refusals counted", func() bool { return f.ts.Stats().AuthFailuresTLS >= before+2 })
		})
	}
	if n := f.ts.Stats().RecordsSent; n != 10 {
		t.Errorf("server sent %d records in all, want only the valid client's 10", n)
	}
}

func TestTokens(t *testing.T) {
	const old, current = "0123456789abcdef-old", "0123456789abcdef-new"
	tr := newRingForTest(t, 1<<20)
	tr.write(100, 10)
	ts := newServerForTest(t, tr.r, Options{Tokens: []string{old, current}})
	for _, tok := range []string{old, current} {
		c := dialForTest(t, ts.addr, DialOptions{Token: tok})
		if got := latest(t, c, 5); got != 5 {
			t.Errorf("token %q: got %d records, want 5", tok, got)
		}
	}
	for _, tok := range []string{"", "0123456789abcdef-bad", old + "x", old[:10]} {
		_, err := Dial(context.Background(), ts.addr, DialOptions{Token: tok})
		if !errors.Is(err, ErrUnauthorized) {
			t.Errorf("token %q: err = %v, want ErrUnauthorized", tok, err)
		}
		// At the frame level: X unauthorized and nothing else, not even
		// the hello reply with the ring's state, though a query follows.
		rc := dialRaw(t, ts.addr)
		rc.send(FrameHello, `{"protocol":1,"token":"`+tok+`"}`)
		rc.send(FrameQuery, `{"id":1,"n":10}`)
		rc.expectError(CodeUnauthorized)
		rc.expectClosed()
	}
	if got := ts.Stats().AuthFailuresToken; got != 8 {
		t.Errorf("token failures = %d, want 8", got)
	}
	if got := ts.Stats().RecordsSent; got != 10 {
		t.Errorf("records sent = %d, want only the authorised clients' 10", got)
	}
}

func TestTokenOverMutualTLS(t *testing.T) {
	const token = "a-token-of-enough-length"
	f := newTLSFixture(t, true, Options{Tokens: []string{token}})
	cfg := clientTLS(t, f.ca, f.client)
	c := dialForTest(t, f.ts.addr, DialOptions{TLSConfig: cfg, Token: token})
	if got := latest(t, c, 3); got != 3 {
		t.Errorf("certificate and token: got %d records, want 3", got)
	}
	_, err := Dial(context.Background(), f.ts.addr, DialOptions{TLSConfig: cfg, Token: "a-token-of-enough-lengtX"})
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("certificate with a wrong token: err = %v, want ErrUnauthorized", err)
	}
	// A valid certificate is not enough: without the token, X and
	// nothing else.
	frames, err := refusedRaw(t, f.ts.addr, cfg, "")
	if len(frames) != 1 || frames[0] != FrameError || !errors.Is(err, io.EOF) {
		t.Errorf("certificate without a token: frames %v, then %v; want X alone, then EOF", frames, err)
	}
	// A valid token is not enough: without the certificate, nothing.
	frames, err = refusedRaw(t, f.ts.addr, clientTLS(t, f.ca, testcert.Pair{}), token)
	if len(frames) != 0 || err == nil {
		t.Errorf("token without a certificate: frames %v, then %v; want none", frames, err)
	}
	waitFor(t, "the failures counted", func() bool {
		st := f.ts.Stats()
		return st.AuthFailuresToken == 2 && st.AuthFailuresTLS == 1
	})
	if n := f.ts.Stats().RecordsSent; n != 3 {
		t.Errorf("server sent %d records in all, want only the authorised client's 3", n)
	}
}

// A client that connects to a TLS server and never finishes the TLS
// handshake is dropped when HandshakeTimeout runs out, with nothing sent,
// like one that never says hello; one that finishes the handshake and
// never says hello gets X timeout, over TLS.
func TestTLSHandshakeTimeout(t *testing.T) {
	f := newTLSFixture(t, true, Options{HandshakeTimeout: 500 * time.Millisecond})
	slow, err := net.Dial("tcp", f.ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte{0x16, 0x03}) // the first bytes of a ClientHello, and no more

	silent, err := tls.Dial("tcp", f.ts.addr, clientTLS(t, f.ca, f.client))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetDeadline(time.Now().Add(20 * time.Second))
	fr := NewFrameReader(silent, MaxServerFrame)
	ft, body, err := fr.Next()
	if err != nil || ft != FrameError || !strings.Contains(string(body), `"timeout"`) {
		t.Errorf("TLS client without a hello: got %s %s, %v; want X timeout", ft, body, err)
	}
	if ft, _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("TLS client without a hello, after X timeout: got %s, %v; want EOF", ft, err)
	}
	silent.Close() // the server waits for that before it closes its side

	slow.SetReadDeadline(time.Now().Add(20 * time.Second))
	if n, err := io.Copy(io.Discard, slow); err != nil || n != 0 {
		t.Errorf("slow TLS client: read %d bytes, %v; want the server to close with nothing sent", n, err)
	}
	waitFor(t, "the connections closed", func() bool { return f.ts.Stats().ConnsOpen == 0 })
	if got := f.ts.Stats().AuthFailuresTLS; got != 1 {
		t.Errorf("TLS failures = %d, want 1 (the unfinished handshake)", got)
	}
}

// A connection in its TLS handshake does not hold a place under MaxConns
// (MaxHandshakes bounds those): a valid client is served past it. Once
// MaxConns clients are served, the next valid client is told busy, over
// TLS, after its certificate verified; a client with a certificate from
// another CA is not told even that.
func TestTLSConnectionsCounted(t *testing.T) {
	f := newTLSFixture(t, true, Options{MaxConns: 1})
	slow, err := net.Dial("tcp", f.ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	waitFor(t, "the connection accepted", func() bool { return f.ts.Stats().Handshakes == 1 })

	first := dialForTest(t, f.ts.addr, DialOptions{TLSConfig: clientTLS(t, f.ca, f.client)})
	if got := latest(t, first, 1); got != 1 {
		t.Errorf("valid client beside one in its TLS handshake: got %d records, want 1", got)
	}
	_, err = Dial(context.Background(), f.ts.addr, DialOptions{TLSConfig: clientTLS(t, f.ca, f.client)})
	var xe *Error
	if !errors.As(err, &xe) || xe.Code != CodeBusy {
		t.Errorf("valid client while full: err = %v, want X busy", err)
	}
	cfg := clientTLS(t, f.ca, f.stranger)
	cert := &cfg.Certificates[0]
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	if frames, err := refusedRaw(t, f.ts.addr, cfg, ""); len(frames) != 0 || err == nil {
		t.Errorf("another CA's client while full: frames %v, then %v; want none", frames, err)
	}

	first.Close()
	waitFor(t, "the place freed", func() bool { return f.ts.Stats().ConnsOpen == 1 })
	c := dialForTest(t, f.ts.addr, DialOptions{TLSConfig: clientTLS(t, f.ca, f.client)})
	if got := latest(t, c, 1); got != 1 {
		t.Errorf("valid client after the first left: got %d records, want 1", got)
	}
	if st := f.ts.Stats(); st.ConnsRejected != 1 || st.RecordsSent != 2 || st.Handshakes != 1 {
		t.Errorf("stats: %d rejected, %d records sent, %d in their handshake; want 1, 2 and 1", st.ConnsRejected, st.RecordsSent, st.Handshakes)
	}
}

// IsRefused tells credential refusals, which no retry cures, from the
// failures a reconnect may cure.
func TestIsRefused(t *testing.T) {
	f := newTLSFixture(t, true, Options{Tokens: []string{"a-token-of-enough-length"}})
	dial := func(cfg *tls.Config, token string) error {
		_, err := Dial(context.Background(), f.ts.addr, DialOptions{TLSConfig: cfg, Token: token})
		return err
	}
	for name, err := range map[string]error{
		"wrong token":           dial(clientTLS(t, f.ca, f.client), "a-token-of-enough-lengtX"),
		"plain TCP":             dial(nil, ""),
		"untrusted server":      dial(clientTLS(t, f.otherCA, f.client), "a-token-of-enough-length"),
		"no client certificate": dial(clientTLS(t, f.ca, testcert.Pair{}), "a-token-of-enough-length"),
	} {
		if err == nil || !IsRefused(err) {
			t.Errorf("%s: IsRefused(%v) = false, want true", name, err)
		}
	}
	for _, err := range []error{io.EOF, &Error{Code: CodeBusy}, &Error{Code: CodeShutdown}, &net.OpError{Op: "dial", Err: errors.New("connection refused")}} {
		if IsRefused(err) {
			t.Errorf("IsRefused(%v) = true, want false", err)
		}
	}
}
