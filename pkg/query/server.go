//go:build linux

package query

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/pkg/shmring"
)

// Server defaults, used for zero Options fields.
const (
	DefaultMaxConns         = 256
	DefaultMaxN             = 1_000_000
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultWriteTimeout     = 30 * time.Second
	// DefaultRetryAfter is the delay a busy server asks clients to wait.
	DefaultRetryAfter = time.Second
)

// ServerName is what the server calls itself in its hello reply.
const ServerName = "collectord"

// Per-connection limits.
const (
	// batchTarget is the size at which a batch is sent: a connection's
	// batch buffer stays about this size unless a single record is larger.
	batchTarget = 64 << 10
	// lingerTimeout bounds how long a closing connection waits for the
	// client to close its side after the last frame, so that the kernel
	// does not reset the connection before the client has read it.
	lingerTimeout = 2 * time.Second
	// maxRejecting bounds the connections being answered "busy" at once;
	// beyond it, connections are closed without an answer.
	maxRejecting = 64
)

// ErrServerClosed is returned by Serve when it is called after Shutdown.
var ErrServerClosed = errors.New("query server closed")

// Options configure a Server. The zero value means defaults; a field that
// is zero or negative takes its default.
type Options struct {
	// MaxConns is the most connections served at once; the next one is
	// answered X busy and closed. Default DefaultMaxConns (256).
	MaxConns int
	// MaxN is the largest n a query may ask for; more is answered X limit.
	// Default DefaultMaxN (1,000,000).
	MaxN int64
	// HandshakeTimeout is how long a new connection has to send its hello
	// before it gets X timeout and is closed. Default
	// DefaultHandshakeTimeout (10s).
	HandshakeTimeout time.Duration
	// IdleTimeout is how long a connection may wait between queries
	// before it is closed. Default DefaultIdleTimeout (5m).
	IdleTimeout time.Duration
	// WriteTimeout is the longest a frame may take to write; a client that
	// reads slower than that is disconnected. Default DefaultWriteTimeout
	// (30s).
	WriteTimeout time.Duration
	// PingInterval is how long a follow may stay quiet before the server
	// sends P. Default DefaultPingInterval (15s).
	PingInterval time.Duration
	// Logger receives connection-level events. Default: nil, which
	// discards them.
	Logger *slog.Logger
	// TLSConfig, if not nil, makes the server speak TLS: every connection
	// completes a TLS handshake (within HandshakeTimeout) before its
	// first frame. For mutual TLS set ClientAuth to
	// tls.RequireAndVerifyClientCert and ClientCAs. A failed handshake
	// closes the connection without a frame. Default nil: plain TCP.
	TLSConfig *tls.Config
	// Tokens, if not empty, are the bearer tokens a client may present in
	// its hello; a hello without one of them is answered X unauthorized
	// and closed, before anything about the ring is sent. Default: no
	// token needed.
	Tokens []string
	// TracerProvider traces queries: each Q frame is a server span, the
	// child of the client span its request's traceparent names (or its
	// hello's). Default nil: no tracing and no tracing work at all. A
	// noop provider counts as nil.
	TracerProvider trace.TracerProvider
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxN <= 0 {
		o.MaxN = DefaultMaxN
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server serves one ring over the query protocol (docs/PROTOCOL.md) on any
// number of listeners. Each connection has two goroutines: one reads the
// client's frames (so that a cancel or a disconnect is seen while a follow
// streams), the other runs the queries and writes the responses through a
// bounded batch buffer. A connection's memory stays bounded whatever it
// asks for, and a client that reads slowly only falls behind in the ring:
// it never slows the writer or other clients.
//
// Every goroutine the Server starts ends before Shutdown returns. The
// Reader must stay open until then.
type Server struct {
	r      *shmring.Reader
	opts   Options
	log    *slog.Logger
	tracer trace.Tracer        // nil: tracing off
	tokens [][sha256.Size]byte // SHA-256 digests of opts.Tokens

	// ctx is cancelled with ErrShutdown by Shutdown: queries derive from it.
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // connection and rejection goroutines

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	rejecting int

	stats counters
}

// NewServer returns a server for the ring r. It starts nothing: call Serve.
func NewServer(r *shmring.Reader, opts Options) *Server {
	opts = opts.withDefaults()
	ctx, cancel := context.WithCancelCause(context.Background())
	tokens := make([][sha256.Size]byte, len(opts.Tokens))
	for i, t := range opts.Tokens {
		tokens[i] = sha256.Sum256([]byte(t))
	}
	return &Server{
		tokens:    tokens,
		r:         r,
		opts:      opts,
		log:       opts.Logger,
		tracer:    newTracer(opts.TracerProvider),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
}

// Serve accepts connections on ln and serves them until Shutdown, then
// returns nil. It may run on several listeners at once, each in its own
// goroutine. Temporary accept failures (such as running out of file
// descriptors) are logged and retried with a backoff; any other failure is
// returned. Serve closes ln when it returns. Called after Shutdown, it
// closes ln and returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	log := s.log.With("listener", ln.Addr().String())
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept failed, retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		s.accept(nc, log)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// accept starts serving nc, or answers it busy.
func (s *Server) accept(nc net.Conn, log *slog.Logger) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if len(s.conns) >= s.opts.MaxConns {
		s.stats.connsRejected.Add(1)
		if s.rejecting >= maxRejecting {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.rejecting++
		s.wg.Add(1)
		s.mu.Unlock()
		go s.reject(nc)
		return
	}
	remote := nc.RemoteAddr().String()
	if s.opts.TLSConfig != nil {
		nc = tls.Server(nc, s.opts.TLSConfig)
	}
	c := newConn(s, nc, log.With("remote", remote))
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.connsTotal.Add(1)
	s.stats.connsOpen.Add(1)
	go c.serve()
}

// reject answers a connection over MaxConns with X busy and closes it.
func (s *Server) reject(nc net.Conn) {
	defer func() {
		s.mu.Lock()
		s.rejecting--
		s.mu.Unlock()
		s.wg.Done()
	}()
	e := &Error{Code: CodeBusy, Message: fmt.Sprintf("too many connections (%d)", s.opts.MaxConns), RetryAfter: DefaultRetryAfter}
	nc.SetDeadline(time.Now().Add(lingerTimeout))
	if s.opts.TLSConfig != nil {
		// The answer must reach a TLS client as TLS. It says nothing
		// about the ring, so it needs no more than the handshake.
		tc := tls.Server(nc, s.opts.TLSConfig)
		if err := tc.HandshakeContext(s.ctx); err != nil {
			s.stats.authFailures[authTLS].Add(1)
			lingerClose(nc) // let the client read the alert
			return
		}
		nc = tc
	}
	nc.Write(AppendFrame(nil, FrameError, marshalJSON(e)))
	lingerClose(nc)
}

// Shutdown stops the server: it closes the listeners, makes every running
// query (follows included) finish its batch and end with E shutdown and its
// cursor, tells idle connections X shutdown, closes every connection and
// waits for all of the server's goroutines. If ctx ends first, it closes
// the remaining connections at once, still waits for the goroutines (which
// then end promptly), and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.cancel(ErrShutdown)

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// RequestStats counts the queries of one kind by how they ended.
type RequestStats struct {
	OK         uint64 // ended with E (done, cancelled or shutdown)
	BadRequest uint64 // answered X bad_request
	Limit      uint64 // answered X limit
	Failed     uint64 // the connection or the ring failed mid-response
}

// ServerStats is a snapshot of a Server's counters, for metrics.
type ServerStats struct {
	ConnsOpen     int64  // connections being served
	ConnsTotal    uint64 // connections served since NewServer
	ConnsRejected uint64 // connections answered X busy (or closed when too many were)

	Latest RequestStats // queries without after or follow
	After  RequestStats // queries with after, without follow
	Follow RequestStats // queries with follow

	// Durations of the latest and after queries that ended with E, from
	// the start of the response to its last frame; follows are not timed.
	LatestDuration, AfterDuration DurationStats

	FollowersActive int64  // follows running now
	RecordsSent     uint64 // records sent in B frames
	RecordsLost     uint64 // records reported lost in L frames: queries (mostly follows) overtaken by the writer

	// Connections refused for want of credentials: a failed TLS
	// handshake (no, an expired or an untrusted client certificate, a
	// client that does not trust the server's, not TLS at all, or a
	// handshake not finished within HandshakeTimeout), or a missing or
	// wrong token.
	AuthFailuresTLS, AuthFailuresToken uint64
}

// counters are the Server's live statistics.
type counters struct {
	connsOpen     atomic.Int64
	connsTotal    atomic.Uint64
	connsRejected atomic.Uint64
	requests      [numKinds][numOutcomes]atomic.Uint64
	followers     atomic.Int64
	sent          atomic.Uint64
	lost          atomic.Uint64
	durations     [numKinds]durationHistogram
	authFailures  [2]atomic.Uint64 // by authTLS, authToken
}

// Kinds of authentication failure.
const (
	authTLS = iota
	authToken
)

// DurationBuckets are the upper bounds, in seconds, of the request
// duration histogram in ServerStats.
var DurationBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// DurationStats is a histogram of request durations: Counts[i] requests took
// at most DurationBuckets[i] seconds (cumulative); Count and Sum cover all.
type DurationStats struct {
	Counts [len(DurationBuckets)]uint64
	Count  uint64
	Sum    float64 // seconds
}

// durationHistogram records durations without locks or allocation.
type durationHistogram struct {
	buckets [len(DurationBuckets)]atomic.Uint64 // not cumulative
	count   atomic.Uint64
	sumNs   atomic.Int64
}

func (h *durationHistogram) observe(d time.Duration) {
	sec := d.Seconds()
	for i, ub := range DurationBuckets {
		if sec <= ub {
			h.buckets[i].Add(1)
			break
		}
	}
	h.sumNs.Add(int64(d))
	h.count.Add(1)
}

func (h *durationHistogram) snapshot() DurationStats {
	var s DurationStats
	var cum uint64
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		s.Counts[i] = cum
	}
	s.Count = h.count.Load()
	s.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return s
}

type kind int

const (
	kindLatest kind = iota
	kindAfter
	kindFollow
	numKinds
)

func kindOf(q *Request) kind {
	switch {
	case q.Follow:
		return kindFollow
	case q.After != nil:
		return kindAfter
	}
	return kindLatest
}

type outcome int

const (
	outcomeOK outcome = iota
	outcomeBadRequest
	outcomeLimit
	outcomeFailed
	numOutcomes
)

// Stats returns the server's counters. It takes no lock and does not
// allocate; it is safe to call at any time from any goroutine.
func (s *Server) Stats() ServerStats {
	c := &s.stats
	req := func(k kind) RequestStats {
		return RequestStats{
			OK:         c.requests[k][outcomeOK].Load(),
			BadRequest: c.requests[k][outcomeBadRequest].Load(),
			Limit:      c.requests[k][outcomeLimit].Load(),
			Failed:     c.requests[k][outcomeFailed].Load(),
		}
	}
	return ServerStats{
		ConnsOpen:       c.connsOpen.Load(),
		ConnsTotal:      c.connsTotal.Load(),
		ConnsRejected:   c.connsRejected.Load(),
		Latest:          req(kindLatest),
		After:           req(kindAfter),
		Follow:          req(kindFollow),
		LatestDuration:  c.durations[kindLatest].snapshot(),
		AfterDuration:   c.durations[kindAfter].snapshot(),
		FollowersActive: c.followers.Load(),
		RecordsSent:     c.sent.Load(),
		RecordsLost:     c.lost.Load(),

		AuthFailuresTLS:   c.authFailures[authTLS].Load(),
		AuthFailuresToken: c.authFailures[authToken].Load(),
	}
}

// conn is one client connection. serve owns it and the reader goroutine;
// the fields below mu are shared with the reader goroutine.
type conn struct {
	s   *Server
	nc  net.Conn
	log *slog.Logger
	fr  *FrameReader
	bw  *bufio.Writer
	h   Handler // the query handler, bound once to this conn

	batch batchWriter
	werr  error // the first write error: the connection is broken

	hello       Hello  // the client's hello
	recordsSent uint64 // records sent in B frames, for query spans
	recordsLost uint64 // records reported lost in L frames, for query spans

	queries    chan pendingQuery // from the reader; closed when it stops
	readerDone chan struct{}     // closed when the reader goroutine has ended

	mu      sync.Mutex
	cancel  context.CancelCauseFunc // the running query's; nil between queries
	queued  int                     // queries read and not yet finished
	cancelQ bool                    // a C arrived for a query read but not yet started
	readErr error                   // why the reader stopped
}

// pendingQuery is a Q frame as the reader goroutine decoded it.
type pendingQuery struct {
	req Request
	err error // a *RequestError
}

// errClientGone is the cause that cancels a query whose client disconnected.
var errClientGone = errors.New("client disconnected")

// errCancelRequested is the cause that cancels a query when the client sends C.
var errCancelRequested = errors.New("client sent cancel")

func newConn(s *Server, nc net.Conn, log *slog.Logger) *conn {
	c := &conn{
		s:   s,
		nc:  nc,
		log: log,
		fr:  NewFrameReader(bufio.NewReaderSize(nc, 4096), MaxClientFrame),
		bw:  bufio.NewWriterSize(nc, 16<<10),
		// One query may be waiting while another runs.
		queries: make(chan pendingQuery, 1),
	}
	c.h = Handler{Record: c.record, Lost: c.lost, Flush: c.flush, Ping: c.ping, PingInterval: s.opts.PingInterval}
	return c
}

// serve runs the connection: handshake, then queries one at a time, until
// the client leaves, breaks the protocol, idles too long, or the server
// shuts down.
func (c *conn) serve() {
	s := c.s
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.stats.connsOpen.Add(-1)
		s.wg.Done()
	}()
	c.log.Debug("connection opened")
	// The TLS handshake and the hello share one deadline, so that a
	// client cannot stretch one after the other.
	deadline := time.Now().Add(s.opts.HandshakeTimeout)
	if tc, ok := c.nc.(*tls.Conn); ok && !c.tlsHandshake(tc, deadline) {
		return
	}
	if xe := c.handshake(deadline); xe != nil {
		c.close(xe)
		return
	}
	c.readerDone = make(chan struct{})
	go c.readLoop()

	idle := time.NewTimer(s.opts.IdleTimeout)
	defer idle.Stop()
	for {
		if s.ctx.Err() != nil {
			c.close(&Error{Code: CodeShutdown, Message: "server shutting down"})
			return
		}
		select {
		case pq, ok := <-c.queries:
			if !ok {
				c.close(c.readerError())
				return
			}
			if !c.serveQuery(pq) {
				c.close(c.readerError())
				return
			}
			idle.Reset(s.opts.IdleTimeout)
		case <-idle.C:
			c.log.Debug("closing idle connection", "idle", s.opts.IdleTimeout)
			c.close(nil)
			return
		case <-s.ctx.Done():
		}
	}
}

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

// readLoop is the reader goroutine: it decodes Q frames for serve, cancels
// the running query on C, and on a disconnect or a protocol violation
// cancels the running query and stops.
func (c *conn) readLoop() {
	defer close(c.readerDone)
	defer close(c.queries)
	for {
		t, body, err := c.fr.Next()
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				err = fmt.Errorf("%w: %w", errClientGone, err)
			}
			c.stopReading(err)
			return
		}
		switch t {
		case FrameQuery:
			req, err := DecodeRequest(body)
			c.mu.Lock()
			c.queued++
			c.mu.Unlock()
			select {
			case c.queries <- pendingQuery{req: req, err: err}:
			default:
				c.stopReading(protocolErrorf("query sent while another is waiting"))
				return
			}
		case FrameCancel:
			if len(body) != 0 {
				c.stopReading(protocolErrorf("cancel frame with a %d-byte body", len(body)))
				return
			}
			c.mu.Lock()
			switch {
			case c.cancel != nil:
				c.cancel(errCancelRequested)
			case c.queued > 0:
				// The query has not started yet: cancel it when it does.
				c.cancelQ = true
			}
			// Otherwise the query it was meant for has already ended.
			c.mu.Unlock()
		default:
			c.stopReading(protocolErrorf("unexpected %s frame from a client", t))
			return
		}
	}
}

// stopReading records why the reader stopped and cancels the running query.
func (c *conn) stopReading(err error) {
	c.mu.Lock()
	c.readErr = err
	if c.cancel != nil {
		c.cancel(err)
	}
	c.mu.Unlock()
}

// readerError returns the X frame owed to the client for a protocol
// violation, or an empty Error (close silently) if it disconnected.
func (c *conn) readerError() *Error {
	c.mu.Lock()
	err := c.readErr
	c.mu.Unlock()
	if err != nil && errors.Is(err, ErrProtocol) {
		c.log.Debug("protocol violation", "err", err)
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	}
	return &Error{}
}

// serveQuery answers one query. It returns false when the connection
// cannot go on.
func (c *conn) serveQuery(pq pendingQuery) bool {
	s := c.s
	c.mu.Lock()
	cancelled := c.cancelQ
	c.cancelQ = false
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.queued--
		c.mu.Unlock()
	}()
	req := &pq.req
	k := kindOf(req)
	span := c.startQuerySpan(req)
	defer span.finish(c)
	if pq.err != nil {
		s.stats.requests[k][outcomeBadRequest].Add(1)
		return c.sendError(span.answer(&Error{ID: req.ID, Code: CodeBadRequest, Message: pq.err.Error()}))
	}
	if req.N != nil && *req.N > s.opts.MaxN {
		s.stats.requests[k][outcomeLimit].Add(1)
		return c.sendError(span.answer(&Error{ID: req.ID, Code: CodeLimit, Message: fmt.Sprintf("n %d exceeds max_n %d", *req.N, s.opts.MaxN)}))
	}

	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	c.mu.Lock()
	switch {
	case c.readErr != nil:
		cancel(c.readErr)
	case cancelled || c.cancelQ:
		cancel(errCancelRequested)
		c.cancelQ = false
	}
	c.cancel = cancel
	c.mu.Unlock()
	if req.Follow {
		s.stats.followers.Add(1)
	}
	start := time.Now()
	end, err := Run(ctx, s.r, *req, c.h)
	if req.Follow {
		s.stats.followers.Add(-1)
	}
	c.mu.Lock()
	c.cancel = nil
	readErr := c.readErr
	c.mu.Unlock()

	switch {
	case c.werr != nil:
		s.stats.requests[k][outcomeFailed].Add(1)
		c.log.Debug("client stopped reading", "err", c.werr)
		span.broke(c.werr)
		return false
	case readErr != nil:
		// The client left or broke the protocol mid-response.
		s.stats.requests[k][outcomeFailed].Add(1)
		span.broke(readErr)
		return false
	case err != nil:
		s.stats.requests[k][outcomeFailed].Add(1)
		c.log.Warn("query failed", "err", err)
		c.sendBatch()
		c.sendError(span.answer(&Error{ID: req.ID, Code: CodeInternal, Message: err.Error()}))
		return false
	}
	s.stats.requests[k][outcomeOK].Add(1)
	span.done(end)
	c.sendBatch()
	c.writeFrame(FrameEnd, marshalJSON(end))
	ok := c.flushWriter() == nil
	if !req.Follow {
		s.stats.durations[k].observe(time.Since(start))
	}
	return ok
}

// sendError writes an X frame; it returns false if the connection broke.
func (c *conn) sendError(e *Error) bool {
	c.writeFrame(FrameError, marshalJSON(e))
	return c.flushWriter() == nil
}

// close ends the connection: it sends e unless e is empty, flushes, and
// closes once the client has closed its side (or lingerTimeout passed).
func (c *conn) close(e *Error) {
	if e != nil && e.Code != "" {
		c.writeFrame(FrameError, marshalJSON(e))
	}
	c.flushWriter()
	switch {
	case c.werr != nil:
		// The client stopped reading: nothing more can reach it.
		c.nc.Close()
		if c.readerDone != nil {
			<-c.readerDone
		}
	case c.readerDone == nil:
		lingerClose(c.nc)
	default:
		// The reader drains until the client closes or the deadline
		// passes; then whatever it left unread is drained here.
		closeWrite(c.nc)
		c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
		<-c.readerDone
		io.Copy(io.Discard, c.nc)
		c.nc.Close()
	}
	c.log.Debug("connection closed")
}

// lingerClose closes nc after telling the client it is done (FIN) and
// reading what the client still sends until it closes its side or
// lingerTimeout passes: closing with unread bytes would reset the
// connection, which can destroy the last frame before the client reads it.
func lingerClose(nc net.Conn) {
	closeWrite(nc)
	nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, nc)
	nc.Close()
}

// closeWrite half-closes nc when it supports that (TCP and UNIX sockets do).
func closeWrite(nc net.Conn) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// The Handler functions below run in serve's goroutine, inside Run.

// record adds a record to the batch, sending the batch first if the record
// would take it past batchTarget.
func (c *conn) record(r Record) error {
	if len(r.Payload) > maxBatchPayload {
		// Cannot be framed: say so rather than skip it silently.
		return c.lost(1, r.Seq+1)
	}
	if c.batch.n > 0 && c.batch.size()+batchRecordHeader+len(r.Payload) > batchTarget {
		if err := c.sendBatch(); err != nil {
			return err
		}
	}
	c.batch.add(r)
	return c.werr
}

// lost sends the batch, then an L frame.
func (c *conn) lost(lost, next uint64) error {
	c.sendBatch()
	c.s.stats.lost.Add(lost)
	c.recordsLost += lost
	var body [lostBodySize]byte
	binary.LittleEndian.PutUint64(body[:], lost)
	binary.LittleEndian.PutUint64(body[8:], next)
	return c.writeFrame(FrameLost, body[:])
}

// flush sends the batch and everything buffered.
func (c *conn) flush() error {
	c.sendBatch()
	return c.flushWriter()
}

// ping sends the batch and a P frame.
func (c *conn) ping() error {
	c.sendBatch()
	c.writeFrame(FramePing, nil)
	return c.flushWriter()
}

// sendBatch writes the batch, if it holds records, to the buffered writer.
func (c *conn) sendBatch() error {
	if c.batch.n == 0 {
		return c.werr
	}
	n := c.batch.n
	err := c.write(c.batch.frame())
	c.s.stats.sent.Add(uint64(n))
	c.recordsSent += uint64(n)
	if cap(c.batch.buf) > 4*batchTarget {
		c.batch.buf = nil // a huge record grew it: give the memory back
	}
	c.batch.reset()
	return err
}

// writeFrame writes a frame to the buffered writer.
func (c *conn) writeFrame(t FrameType, body []byte) error {
	var hdr [frameHeaderSize]byte
	binary.LittleEndian.PutUint32(hdr[:], uint32(len(body)+1))
	hdr[4] = byte(t)
	if err := c.write(hdr[:]); err != nil {
		return err
	}
	return c.write(body)
}

// write writes to the buffered writer under the write deadline, and
// remembers the first failure: after it every write fails.
func (c *conn) write(p []byte) error {
	if c.werr != nil {
		return c.werr
	}
	if len(p) > c.bw.Available() {
		c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	}
	if _, err := c.bw.Write(p); err != nil {
		c.werr = fmt.Errorf("write to client: %w", err)
	}
	return c.werr
}

// flushWriter sends what the buffered writer holds, under the write
// deadline.
func (c *conn) flushWriter() error {
	if c.werr != nil {
		return c.werr
	}
	if c.bw.Buffered() == 0 {
		return nil
	}
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	if err := c.bw.Flush(); err != nil {
		c.werr = fmt.Errorf("write to client: %w", err)
	}
	return c.werr
}
