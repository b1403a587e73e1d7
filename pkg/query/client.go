package query

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Client defaults, used for zero DialOptions fields.
const (
	// DefaultClientName is how a client introduces itself in its hello.
	DefaultClientName = "collectord-go"
	// DefaultTimeout bounds one frame read or write by a client. It must
	// exceed the server's ping interval (15s by default), which keeps a
	// quiet follow alive.
	DefaultTimeout = time.Minute
	// DefaultCancelTimeout is how long a cancelled Query waits for the
	// server to end the response.
	DefaultCancelTimeout = 5 * time.Second
)

// ErrClientClosed is returned by Query after Close.
var ErrClientClosed = errors.New("query client closed")

// DialOptions configure Dial. The zero value means defaults.
type DialOptions struct {
	// Client names the program in the hello, for the server's logs.
	// Default DefaultClientName.
	Client string
	// TraceParent is the W3C trace context of the caller's span for the
	// connection. Default: the span in Dial's context, if any; else none.
	TraceParent string
	// TracerProvider traces queries: each Query is a client span, a child
	// of the span in its context, whose W3C trace context the request
	// carries so that the server's span joins the same trace. Default
	// nil: no spans, and no tracing work beyond forwarding the span
	// already in a Query's context (or Dial's, for the hello), if any.
	// A noop provider counts as nil.
	TracerProvider trace.TracerProvider
	// TLSConfig, if not nil, makes the client speak TLS to the server.
	// An empty ServerName is taken from addr's host. For mutual TLS, set
	// Certificates. Default nil: plain TCP.
	TLSConfig *tls.Config
	// Token is the bearer token sent in the hello, for a server that
	// needs one. Default: none.
	Token string
	// DialContext opens the connection. Default: a net.Dialer's.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Timeout bounds each frame read or write. Default DefaultTimeout (1m).
	Timeout time.Duration
	// CancelTimeout is how long a cancelled Query waits for the server's
	// E frame before it gives up and closes the connection. Default
	// DefaultCancelTimeout (5s).
	CancelTimeout time.Duration
	// Pipeline makes Dial send the hello and return without waiting for
	// the server's reply. The first Query then sends its request right
	// behind the hello and reads the reply before the response, so that
	// connecting and querying take one round trip instead of two (the
	// server reads a pipelined query once it has answered the hello; a
	// refusal ends the connection before it is read). The errors Dial
	// would return for the reply (a refusal, another protocol version)
	// come from that Query instead, the same values, and leave the client
	// unusable. Until the reply is read, Hello returns the zero
	// HelloReply; Handler.Hello gets it before any record. Stats reads it
	// before sending its request. Default false: Dial waits for the reply.
	Pipeline bool

	protocol int // the version to announce; tests set it
}

func (o DialOptions) withDefaults() DialOptions {
	if o.Client == "" {
		o.Client = DefaultClientName
	}
	if o.DialContext == nil {
		var d net.Dialer
		o.DialContext = d.DialContext
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.CancelTimeout <= 0 {
		o.CancelTimeout = DefaultCancelTimeout
	}
	if o.protocol == 0 {
		o.protocol = Version
	}
	return o
}

// Client is a connection to a query server. It runs one query at a time:
// concurrent Query calls wait for each other. Close may be called at any
// time, from any goroutine.
type Client struct {
	nc    net.Conn
	fr    *FrameReader
	opts  DialOptions
	addr  string
	hello HelloReply
	tr    clientTracing
	// helloPending: the hello is sent and its reply not read yet
	// (DialOptions.Pipeline).
	helloPending bool

	mu     sync.Mutex // held for a whole Query
	broken error      // set when the connection cannot be used any more
	closed atomic.Bool

	// cmu guards the cancel state and every write made while a response
	// streams (the C frame may come from the context's goroutine).
	cmu        sync.Mutex
	cancelSent bool
	cancelBy   time.Time // when a cancelled query gives up waiting for E
}

// UnixPrefix starts an address that names a UNIX socket: "unix:PATH".
const UnixPrefix = "unix:"

// Dial connects to the query server at addr and says hello: addr is
// "host:port" for TCP, or UnixPrefix and a path for a server's local
// socket, where the kernel tells the server who the client is (and TLS
// is not spoken). ctx bounds the connection and the handshake.
//
// When the server refuses the client (too many connections, another
// protocol version) the error is an *Error with the server's Code,
// Message and RetryAfter; match it with errors.As. A missing or wrong
// token, or plain TCP to a server that needs TLS, is an *Error with
// CodeUnauthorized, which errors.Is(err, ErrUnauthorized) matches. A TLS
// handshake that fails is an error that says "tls handshake": it wraps a
// *tls.CertificateVerificationError when the server's certificate does not
// verify, and a *net.OpError "remote error" (the alert) when the server
// refused the client's certificate. IsRefused reports all of these.
func Dial(ctx context.Context, addr string, opts DialOptions) (*Client, error) {
	opts = opts.withDefaults()
	network, address := "tcp", addr
	if path, ok := strings.CutPrefix(addr, UnixPrefix); ok {
		if opts.TLSConfig != nil {
			return nil, fmt.Errorf("dial query server %s: TLS is for TCP, not for a local socket", addr)
		}
		network, address = "unix", path
	}
	nc, err := opts.DialContext(ctx, network, address)
	if err != nil {
		return nil, fmt.Errorf("dial query server %s: %w", addr, err)
	}
	if opts.TLSConfig != nil {
		if nc, err = tlsHandshake(ctx, nc, addr, opts.TLSConfig, opts.Timeout); err != nil {
			return nil, fmt.Errorf("dial query server %s: %w", addr, err)
		}
	}
	c := &Client{
		nc:   nc,
		fr:   NewFrameReader(bufio.NewReaderSize(nc, 16<<10), MaxServerFrame),
		opts: opts,
		addr: addr,
	}
	c.initTracing(ctx, addr)
	if err := c.handshake(ctx, !opts.Pipeline); err != nil {
		nc.Close()
		return nil, fmt.Errorf("dial query server %s: %w", addr, err)
	}
	return c, nil
}

// tlsHandshake runs the client side of a TLS handshake on nc, within
// timeout, and closes nc if it fails.
func tlsHandshake(ctx context.Context, nc net.Conn, addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg = cfg.Clone()
		cfg.ServerName = host
	}
	tc := tls.Client(nc, cfg)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("tls handshake: %w", err)
	}
	return tc, nil
}

// IsRefused reports whether err from Dial or Query says that one side
// refused the other's credentials: a missing or wrong token, plain TCP to
// a server that needs TLS (both ErrUnauthorized), a server certificate
// that does not verify, or a TLS alert from the server (a client
// certificate refused). Dialling again with the same credentials cannot
// succeed.
func IsRefused(err error) bool {
	var cve *tls.CertificateVerificationError
	return errors.Is(err, ErrUnauthorized) || errors.As(err, &cve) || isTLSAlert(err)
}

// isTLSAlert reports whether err is a TLS alert the peer sent, such as
// "remote error: tls: certificate required".
func isTLSAlert(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error"
}

// handshake sends the hello and, if wait, reads the reply; otherwise the
// first Query or Stats reads it (readHello).
func (c *Client) handshake(ctx context.Context, wait bool) error {
	deadline := time.Now().Add(c.opts.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	c.nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	hello := marshalJSON(Hello{Protocol: c.opts.protocol, Client: c.opts.Client, TraceParent: c.opts.TraceParent, Token: c.opts.Token})
	if _, err := c.nc.Write(AppendFrame(nil, FrameHello, hello)); err != nil {
		return c.ctxErr(ctx, fmt.Errorf("send hello: %w", err))
	}
	if wait {
		if err := c.readHello(ctx); err != nil {
			return err
		}
	} else {
		c.helloPending = true
	}
	if !stop() {
		return ctx.Err()
	}
	c.nc.SetDeadline(time.Time{})
	return nil
}

// ErrNoStats is returned by Stats when the server does not answer stats
// requests (an older collectord).
var ErrNoStats = errors.New("this query server does not answer stats requests (an older collectord?)")

// Stats asks the server for the daemon's figures: the samples its metrics
// endpoint exports, less those the client's access does not cover (see
// StatsReply.Access). It waits for any Query to finish first. The
// results: (reply, nil); (StatsReply{}, ErrNoStats) when the hello said
// the server does not answer them (the client stays usable); or
// (StatsReply{}, err) when the connection failed, after which the client
// is unusable.
func (c *Client) Stats(ctx context.Context) (StatsReply, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed.Load():
		return StatsReply{}, ErrClientClosed
	case c.broken != nil:
		return StatsReply{}, c.broken
	}
	if err := c.readPendingHello(ctx); err != nil {
		return StatsReply{}, err
	}
	switch {
	case !c.hello.Stats:
		return StatsReply{}, ErrNoStats
	}
	if err := ctx.Err(); err != nil {
		return StatsReply{}, err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.nc.SetDeadline(time.Now().Add(c.opts.Timeout))
	defer c.nc.SetDeadline(time.Time{})
	if _, err := c.nc.Write(AppendFrame(nil, FrameStats, nil)); err != nil {
		return StatsReply{}, c.fail(c.ctxErr(ctx, fmt.Errorf("send stats request: %w", err)))
	}
	t, body, err := c.fr.Next()
	if err != nil {
		return StatsReply{}, c.fail(c.ctxErr(ctx, fmt.Errorf("read stats reply: %w", err)))
	}
	switch t {
	case FrameFigures:
		r, err := DecodeStatsReply(body)
		if err != nil {
			return StatsReply{}, c.fail(err)
		}
		return r, nil
	case FrameError:
		xe, err := DecodeError(body)
		if err != nil {
			return StatsReply{}, c.fail(err)
		}
		return StatsReply{}, c.fail(xe)
	}
	return StatsReply{}, c.fail(protocolErrorf("expected an s frame, got %s", t))
}

// ctxErr prefers ctx's error to the I/O error it caused.
func (c *Client) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Hello returns the server's hello reply: its ring's identity, head and
// oldest record as of the handshake, and the largest n it accepts. With
// DialOptions.Pipeline it is the zero HelloReply until the first Query or
// Stats has read the reply; call it after that call has returned (or use
// Handler.Hello), not while it runs.
func (c *Client) Hello() HelloReply { return c.hello }

// Query sends req and streams the response to h until the server ends it.
// Records arrive in strictly increasing sequence order; their payloads are
// valid only during the h.Record call. Query checks the server's stream
// (frame sizes, ordering, bodies) and treats a violation as a broken
// connection.
//
// If ctx is cancelled, Query sends C and waits (at most CancelTimeout) for
// the server's E frame; it then returns that End, whose Reason is usually
// ReasonCancelled, and a nil error: cancelling is how a follow ends. If a
// Handler function returns an error, Query cancels the same way, ignores
// the rest of the response, and returns the End with that error.
//
// The results:
//   - (End, nil): the response is complete; End.Cursor is where to resume.
//   - (End, handler's error): as above, cut short by the handler.
//   - (End{ID}, *Error): the server refused the query (CodeBadRequest,
//     CodeLimit, ...). After CodeBadRequest and CodeLimit the client stays
//     usable; after other codes the server has closed the connection.
//   - (End{}, other error): the connection failed (or ctx was cancelled
//     and the server did not answer in time); the client is unusable and
//     later calls return the same error. Reconnect and resume after the
//     last record received.
//
// With DialOptions.TracerProvider, each Query is a client span (see
// "Tracing" in the package doc) whose W3C trace context replaces
// req.TraceParent; the span's parent is the span in ctx or, when ctx has
// none, the caller's req.TraceParent. Without it, Query sets an empty
// req.TraceParent from the span in ctx, if any.
func (c *Client) Query(ctx context.Context, req Request, h Handler) (end End, err error) {
	span := c.startQuerySpan(ctx, &req, &h)
	defer func() { span.end(end, err) }()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return End{}, ErrClientClosed
	}
	if c.broken != nil {
		return End{}, c.broken
	}
	if err := ctx.Err(); err != nil {
		return End{}, err
	}
	body, err := json.Marshal(req)
	if err != nil {
		return End{}, &RequestError{Err: err}
	}
	if len(body)+1 > MaxClientFrame {
		return End{}, &RequestError{Err: fmt.Errorf("request of %d bytes exceeds the %d-byte frame limit", len(body), MaxClientFrame-1)}
	}
	c.cmu.Lock()
	c.cancelSent = false
	c.nc.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	_, err = c.nc.Write(AppendFrame(nil, FrameQuery, body))
	c.cmu.Unlock()
	if err != nil {
		return End{}, c.fail(fmt.Errorf("send query: %w", err))
	}

	cancelled := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.cancel()
		close(cancelled)
	})
	defer func() {
		if !stop() {
			<-cancelled
		}
	}()

	s := stream{h: &h}
	if req.After != nil {
		s.last = *req.After
	}
	if c.helloPending {
		if err := c.readPendingHello(ctx); err != nil {
			return End{}, c.ctxErr(ctx, err)
		}
		if h.Hello != nil {
			if s.herr = h.Hello(c.hello); s.herr != nil {
				c.cancel()
			}
		}
	}
	for {
		c.setReadDeadline()
		t, body, err := c.fr.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && c.cancelling() {
				err = fmt.Errorf("no end from the server within %v of cancelling: %w", c.opts.CancelTimeout, err)
			}
			return End{}, c.fail(fmt.Errorf("read response: %w", err))
		}
		end, done, err := s.handle(t, body)
		if s.herr != nil && !c.cancelling() {
			c.cancel()
		}
		if err != nil {
			var xe *Error
			if !errors.As(err, &xe) {
				return End{}, c.fail(err)
			}
			if xe.Code != CodeBadRequest && xe.Code != CodeLimit {
				c.fail(xe)
			}
			return end, xe
		}
		if done {
			return end, s.herr
		}
	}
}

// setReadDeadline bounds the next frame read: Timeout from now, or the
// cancel deadline if that is sooner.
func (c *Client) setReadDeadline() {
	c.cmu.Lock()
	d := time.Now().Add(c.opts.Timeout)
	if c.cancelSent && c.cancelBy.Before(d) {
		d = c.cancelBy
	}
	c.nc.SetReadDeadline(d)
	c.cmu.Unlock()
}

// cancel sends C once per query and bounds the wait for the E frame.
func (c *Client) cancel() {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	if c.cancelSent {
		return
	}
	c.cancelSent = true
	c.cancelBy = time.Now().Add(c.opts.CancelTimeout)
	c.nc.SetReadDeadline(c.cancelBy)
	c.nc.SetWriteDeadline(c.cancelBy)
	// A failed write shows up as a failed read.
	c.nc.Write(AppendFrame(nil, FrameCancel, nil))
}

func (c *Client) cancelling() bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.cancelSent
}

// fail marks the connection unusable, closes it and returns err.
func (c *Client) fail(err error) error {
	if c.closed.Load() {
		err = ErrClientClosed
	}
	c.broken = err
	c.nc.Close()
	return err
}

// Close closes the connection. A Query running meanwhile returns
// ErrClientClosed.
func (c *Client) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	err := c.nc.Close()
	if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

// stream checks and delivers the frames of one response.
type stream struct {
	h    *Handler
	last uint64 // the last sequence number delivered or lost
	herr error  // the first handler error: the rest is dropped
}

// handle processes one server frame. done is true, with the End, when the
// response is over. err wraps ErrProtocol when the server broke the
// protocol, or is the server's *Error (with done true).
func (s *stream) handle(t FrameType, body []byte) (end End, done bool, err error) {
	switch t {
	case FrameBatch:
		b, err := ParseBatch(body)
		if err != nil {
			return End{}, false, err
		}
		for r, ok := b.Next(); ok; r, ok = b.Next() {
			if r.Seq <= s.last {
				return End{}, false, protocolErrorf("record %d after %d", r.Seq, s.last)
			}
			s.last = r.Seq
			if s.herr == nil {
				s.herr = s.h.record(r)
			}
		}
		if s.herr == nil {
			s.herr = s.h.flush()
		}
	case FrameLost:
		lost, next, err := ParseLost(body)
		if err != nil {
			return End{}, false, err
		}
		if next <= s.last {
			return End{}, false, protocolErrorf("loss up to %d after record %d", next, s.last)
		}
		s.last = next - 1
		if s.herr == nil {
			s.herr = s.h.lost(lost, next)
		}
	case FramePing:
		if len(body) != 0 {
			return End{}, false, protocolErrorf("ping frame with a %d-byte body", len(body))
		}
		if s.herr == nil {
			s.herr = s.h.ping()
		}
	case FrameEnd:
		e, err := DecodeEnd(body)
		if err != nil {
			return End{}, false, err
		}
		if e.Cursor < s.last {
			return End{}, false, protocolErrorf("end cursor %d before record %d", e.Cursor, s.last)
		}
		return e, true, nil
	case FrameError:
		xe, err := DecodeError(body)
		if err != nil {
			return End{}, false, err
		}
		return End{ID: xe.ID}, true, xe
	default:
		return End{}, false, protocolErrorf("unexpected %s frame in a response", t)
	}
	return End{}, false, nil
}
