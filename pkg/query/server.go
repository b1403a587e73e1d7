//go:build linux

package query

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/pkg/histogram"
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
	s := &Server{
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
	for k := range s.stats.durations {
		s.stats.durations[k] = histogram.New(DurationBuckets[:])
	}
	return s
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
