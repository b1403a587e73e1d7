//go:build linux

package query

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// tlsHandshake runs the server's side of the TLS handshake, which must end
// by deadline. If it fails, tlsHandshake counts the failure, closes the
// connection without sending a frame over TLS, and returns false.
func (c *conn) tlsHandshake(tc *tls.Conn, deadline time.Time) bool {
	s := c.s
	tc.SetDeadline(deadline)
	err := tc.HandshakeContext(s.ctx)
	if err == nil {
		tc.SetWriteDeadline(time.Time{})
		return true
	}
	raw := tc.NetConn()
	if s.ctx.Err() != nil || c.wasDropped() {
		raw.Close()
		return false
	}
	s.stats.authFailures[authTLS].Add(1)
	var ne net.Error
	var rhe tls.RecordHeaderError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		c.log.Info("refused connection: TLS handshake not finished in time", "timeout", s.opts.HandshakeTimeout)
		raw.Close()
		return false
	case errors.As(err, &rhe) && rhe.Conn != nil:
		// Not TLS at all: most likely a client of this protocol without
		// TLS. Tell it in its own terms, so that it stops rather than
		// retries; this says nothing about the ring.
		c.log.Info("refused connection: not TLS", "err", err)
		e := &Error{Code: CodeUnauthorized, Message: "this server speaks TLS (logctl --tls-ca, --tls-cert, --tls-key)"}
		raw.Write(AppendFrame(nil, FrameError, marshalJSON(e)))
	default:
		c.log.Info("refused connection: TLS handshake failed", "err", err)
	}
	// The TLS alert (or the X frame) is sent: let the client read it
	// before the connection closes, rather than have a reset destroy it.
	lingerClose(raw)
	return false
}

// handshake reads the hello, which must arrive by deadline, decides what
// the client may read, and answers it; it returns the error to send (or an
// empty Error to close silently) when the connection cannot go on.
func (c *conn) handshake(deadline time.Time) *Error {
	s := c.s
	c.nc.SetReadDeadline(deadline)
	stop := context.AfterFunc(s.ctx, func() { c.nc.SetReadDeadline(time.Unix(1, 0)) })
	t, body, err := c.fr.Next()
	if !stop() || s.ctx.Err() != nil {
		return &Error{Code: CodeShutdown, Message: "server shutting down"}
	}
	var ne net.Error
	switch {
	case err != nil && c.wasDropped():
		return &Error{}
	case errors.As(err, &ne) && ne.Timeout():
		c.log.Debug("no hello in time", "timeout", s.opts.HandshakeTimeout)
		return &Error{Code: CodeTimeout, Message: fmt.Sprintf("no hello within %v", s.opts.HandshakeTimeout)}
	case errors.Is(err, ErrProtocol):
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	case err != nil:
		c.log.Debug("connection closed before hello", "err", err)
		return &Error{}
	case t != FrameHello:
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("expected an H frame, got %s", t)}
	}
	hello, err := DecodeHello(body)
	if err != nil {
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	if hello.Protocol != Version {
		c.log.Debug("protocol version mismatch", "client", hello.Client, "protocol", hello.Protocol)
		return &Error{Code: CodeVersion, Message: fmt.Sprintf("client speaks protocol version %d, this server speaks version %d", hello.Protocol, Version)}
	}
	access, xe := c.grant(&hello)
	hello.Token = "" // not kept: nothing should log it
	if xe != nil {
		return xe
	}
	if xe := s.admit(c); xe != nil {
		return xe
	}
	c.nc.SetReadDeadline(time.Time{})
	c.hello, c.access = hello, access
	c.log = c.log.With("access", access.String())
	if hello.Client != "" {
		c.log = c.log.With("client", hello.Client)
	}
	st := s.r.Stats()
	reply := HelloReply{
		Protocol: Version,
		Server:   ServerName,
		RingID:   fmt.Sprintf("%016x", st.Created.UnixNano()),
		Head:     st.Head,
		Oldest:   st.Oldest,
		MaxN:     NoMaxN,
		Access:   AccessAllName,
		Stats:    s.opts.Stats != nil,
	}
	if uid, own := access.Own(); own {
		reply.Access, reply.UID = AccessOwnName, &uid
	}
	c.writeFrame(FrameWelcome, marshalJSON(reply))
	if err := c.flushWriter(); err != nil {
		c.log.Debug("write hello reply", "err", err)
		return &Error{}
	}
	return nil
}

// grant decides what the client whose hello is h may read, or refuses it
// with X unauthorized.
//
//   - A token, when the server has tokens, must be one of them, on any
//     socket; a valid one grants every record.
//   - On a UNIX socket the kernel says who the client is: root, the
//     ReaderUIDs and the members of the ReaderGroups read every record,
//     anyone else the records their own processes sent.
//   - On the network a client must prove itself when the server has
//     tokens (a token) and otherwise may (a client certificate the TLS
//     handshake verified); one that proves nothing reads every record
//     if AnonymousAll says so, and is refused if not.
func (c *conn) grant(h *Hello) (Access, *Error) {
	s := c.s
	token := len(s.tokens) > 0 && h.Token != ""
	if token && !s.validToken(h.Token) || len(s.tokens) > 0 && h.Token == "" && c.peer == nil {
		s.stats.authFailures[authToken].Add(1)
		c.log.Info("refused connection: missing or wrong token", "client", h.Client, "token_given", h.Token != "")
		return Access{}, &Error{Code: CodeUnauthorized, Message: "this server needs a valid token (logctl --token-file)"}
	}
	switch {
	case token:
		return AllRecords(), nil
	case c.peer != nil:
		if c.peer.uid == 0 || slices.Contains(s.opts.ReaderUIDs, c.peer.uid) || c.peer.inAnyGroup(s.opts.ReaderGroups) {
			return AllRecords(), nil
		}
		return OwnRecords(c.peer.uid), nil
	case c.verifiedCertificate() || s.opts.AnonymousAll:
		return AllRecords(), nil
	}
	s.stats.authFailures[authAnonymous].Add(1)
	c.log.Info("refused connection: anonymous client on the network", "client", h.Client)
	return Access{}, &Error{Code: CodeUnauthorized, Message: "this server does not answer anonymous network clients: use its local socket (logctl's default on its host), a token (logctl --token-file) or a client certificate"}
}

// verifiedCertificate reports whether the client presented a certificate
// that the TLS handshake verified.
func (c *conn) verifiedCertificate() bool {
	tc, ok := c.nc.(*tls.Conn)
	return ok && len(tc.ConnectionState().VerifiedChains) > 0
}

// wasDropped reports whether the server closed c in its handshake to admit
// a newer connection.
func (c *conn) wasDropped() bool {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.dropped
}

// validToken reports whether token is one of the server's tokens. Digests
// are compared, in constant time, so the time taken says nothing about
// which token, how much of it, or what length matched.
func (s *Server) validToken(token string) bool {
	h := sha256.Sum256([]byte(token))
	ok := 0
	for _, t := range s.tokens {
		ok |= subtle.ConstantTimeCompare(h[:], t[:])
	}
	return ok == 1
}
