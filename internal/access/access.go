package access

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
)

// MinVersion is the oldest TLS version either side accepts.
const MinVersion = tls.VersionTLS13

// ServerTLS returns the query server's TLS configuration: the certificate
// and key in certFile and keyFile (PEM), and, if clientCAFile is not
// empty, mutual TLS: every client must present a certificate that one of
// the CAs in clientCAFile signed, and that has not expired.
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{cert}}
	if clientCAFile != "" {
		pool, err := loadPool(clientCAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// ClientTLS returns a client's TLS configuration: it trusts the CAs in
// caFile ("" for the system's roots), presents the certificate in certFile
// and keyFile if they are given (both or neither), and checks the server's
// certificate against serverName ("" for the host it dials).
func ClientTLS(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: MinVersion, ServerName: serverName}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := loadKeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "":
		return nil, fmt.Errorf("client certificate %s: no key file given (both or neither)", certFile)
	case keyFile != "":
		return nil, fmt.Errorf("client key %s: no certificate file given (both or neither)", keyFile)
	}
	return cfg, nil
}

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("read key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

func loadPool(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA certificates %s: no PEM certificate found", caFile)
	}
	return pool, nil
}

// ReadTokens reads a server's bearer tokens: one per non-empty line, so
// that during a rotation the old and the new token both work. Leading and
// trailing white space is ignored; a token must be at least MinTokenLen
// bytes of printable ASCII without spaces. A file without a token is an
// error. warn is not empty when users other than the file's owner and
// group may read or write it: the tokens work, but the caller should
// report it.
func ReadTokens(path string) (tokens []string, warn string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read tokens: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if t == "" {
			continue
		}
		if err := checkToken(t); err != nil {
			return nil, "", fmt.Errorf("tokens %s line %d: %w", path, i+1, err)
		}
		tokens = append(tokens, t)
	}
	if len(tokens) == 0 {
		return nil, "", fmt.Errorf("tokens %s: no token in the file", path)
	}
	return tokens, worldReadable(path), nil
}

// ReadToken reads a client's bearer token: the first non-empty line of
// path. warn is as for ReadTokens.
func ReadToken(path string) (token, warn string, err error) {
	tokens, warn, err := ReadTokens(path)
	if err != nil {
		return "", "", err
	}
	return tokens[0], warn, nil
}

// MinTokenLen is the shortest token accepted: 16 bytes of a random
// base64 or hex string are enough that guessing is hopeless.
const MinTokenLen = 16

func checkToken(t string) error {
	if len(t) < MinTokenLen {
		return fmt.Errorf("token of %d bytes: want at least %d (e.g. openssl rand -hex 32)", len(t), MinTokenLen)
	}
	for _, c := range []byte(t) {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("token contains %q: want printable ASCII without spaces", c)
		}
	}
	return nil
}

// worldReadable returns a warning if path's mode lets every user read or
// write it, else "".
func worldReadable(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	switch perm := st.Mode().Perm(); {
	case perm&0o002 != 0:
		return fmt.Sprintf("%s is writable by every user (mode %#o): anyone on this host can replace its tokens", path, perm)
	case perm&0o004 != 0:
		return fmt.Sprintf("%s is readable by every user (mode %#o): anyone on this host can use its tokens", path, perm)
	}
	return ""
}
