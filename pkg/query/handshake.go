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
	if s.ctx.Err() != nil {
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

// handshake reads the hello, which must arrive by deadline, and answers
// it; it returns the error to send (or an empty Error to close silently)
// when the connection cannot go on.
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
	if !s.authorized(hello.Token) {
		s.stats.authFailures[authToken].Add(1)
		c.log.Info("refused connection: missing or wrong token", "client", hello.Client, "token_given", hello.Token != "")
		return &Error{Code: CodeUnauthorized, Message: "this server needs a valid token (logctl --token-file)"}
	}
	hello.Token = "" // not kept: nothing should log it
	c.nc.SetReadDeadline(time.Time{})
	c.hello = hello
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
		MaxN:     s.opts.MaxN,
	}
	c.writeFrame(FrameWelcome, marshalJSON(reply))
	if err := c.flushWriter(); err != nil {
		c.log.Debug("write hello reply", "err", err)
		return &Error{}
	}
	return nil
}

// authorized reports whether token lets a client in: it is one of the
// server's tokens, or the server needs none. Digests are compared, in
// constant time, so the time taken says nothing about which token, how
// much of it, or what length matched.
func (s *Server) authorized(token string) bool {
	if len(s.tokens) == 0 {
		return true
	}
	h := sha256.Sum256([]byte(token))
	ok := 0
	for _, t := range s.tokens {
		ok |= subtle.ConstantTimeCompare(h[:], t[:])
	}
	return ok == 1 && token != ""
}
