// Package access decides who may reach the query server, and loads the
// credentials of the server and its clients from files.
//
// # Exposure
//
// Guard.Check is the one rule for where the query server may listen: a
// loopback address always; any other address only behind TLS or a token,
// or with query_insecure. collectord's configuration applies it to
// query_addr, and the daemon to the real address of the socket it serves,
// so that a socket systemd passes is held to the same rule.
//
// # Credentials
//
// The functions below load TLS certificates and keys, the CAs that sign the
// other side's certificates, and bearer tokens. collectord's configuration
// and logctl's flags name the files; pkg/query uses what comes back
// (query.Options.TLSConfig and Tokens, query.DialOptions.TLSConfig and
// Token).
//
// Every error names the file and what is wrong with it; callers prefix the
// configuration key or flag ("query_tls_client_ca: CA certificates
// /etc/ca.pem: no PEM certificate found"). Nothing here logs: a condition
// worth a warning (a token file every user may read) is returned for the
// caller to log. Files are read once, when a function is called:
// collectord reads them again when it is reloaded (SIGHUP re-executes it),
// so renewed certificates and rotated tokens take effect without a
// restart.
//
// TLS 1.3 is the minimum (MinVersion): both ends are collectord's own
// programs, built with the same Go, so there is no older peer to
// accommodate; 1.3 leaves no cipher suite or renegotiation choice to get
// wrong, and encrypts the certificates, so that a client certificate's
// name is not shown to the network.
//
// Guard and every function here are safe for concurrent use. The
// *tls.Config and token slices returned are new on each call and belong
// to the caller, who must not change a *tls.Config once a server or
// client uses it.
package access
