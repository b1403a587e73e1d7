package access

import (
	"errors"
	"net"
	"net/netip"
)

// ErrExposed means a query address other hosts can reach has nothing to
// guard it: anyone who reaches it could read every log.
var ErrExposed = errors.New("not a loopback address, and neither TLS nor a token guards it: " +
	"anyone who reaches it could read every log; set query_tls_cert/query_tls_key (and query_tls_client_ca) " +
	"or query_token_file, or query_insecure = true")

// Guard says what protects the query server from callers on other hosts.
// It is the one place that decides whether an address may be served:
// collectord's configuration checks the address it is given, and the
// daemon checks the real address of the socket it serves (which systemd
// may have passed), with the same rule.
type Guard struct {
	TLS      bool // the server speaks TLS (query_tls_cert, query_tls_key)
	Token    bool // the server needs a bearer token (query_token_file)
	Insecure bool // serving other hosts unguarded is intended (query_insecure)
}

// Check returns an error wrapping ErrExposed when addr (HOST:PORT) can be
// reached from other hosts and nothing guards it, nil otherwise. Callers
// prefix what they checked: the key, or the socket.
func (g Guard) Check(addr string) error {
	if g.TLS || g.Token || g.Insecure || IsLoopback(addr) {
		return nil
	}
	return ErrExposed
}

// CleartextToken reports whether a token would cross the network in clear:
// the server needs one, does not speak TLS, and listens beyond loopback.
func (g Guard) CleartextToken(addr string) bool {
	return g.Token && !g.TLS && !IsLoopback(addr)
}

// IsLoopback reports whether the TCP address addr (HOST:PORT) can only be
// reached from this host: a loopback IP, or "localhost". An empty host
// means every address, which is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
