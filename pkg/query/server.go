//go:build linux

package query

import (
	"container/list"
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
	DefaultMaxHandshakes    = 2048
	DefaultMaxConnsPerUID   = 16
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
	// maxRejecting bounds the local connections being answered "busy"
	// (over MaxConnsPerUID) at once; beyond it, they are closed without an
	// answer.
	maxRejecting = 64
)

// ErrServerClosed is returned by Serve when it is called after Shutdown.
var ErrServerClosed = errors.New("query server closed")

// Options configure a Server. The zero value means defaults; a field that
// is zero or negative takes its default.
type Options struct {
	// MaxConns is the most connections served at once, on all listeners,
	// counting those past their hello; the next hello is answered X busy
	// and the connection closed. Default DefaultMaxConns (256).
	MaxConns int
	// MaxHandshakes is the most network (not UNIX socket) connections
	// that may be in their handshake at once: accepted, and not yet past
	// their TLS handshake and hello. They do not count under MaxConns.
	// When one more is accepted, the oldest of them is closed to make
	// room (OpenSSH's MaxStartups, without the randomness), so that
	// connections that never say hello cannot keep a client who does
	// out. Each costs the server about 12 KiB (a descriptor, a goroutine
	// and a read buffer; the write buffer comes with the first reply), so
	// the default bounds them at about 25 MiB: enough that a flood of
	// 2,000 held connections is held without dropping any, and a client
	// gets in without the flood being reopened at the rate the server
	// drops it. Default DefaultMaxHandshakes (2048).
	MaxHandshakes int
	// Arrivals, from the process writing the ring, lets follows of one
	// user's records sleep until that user's records arrive. Default nil:
	// they wake with every follow, on the ring's ticks.
	Arrivals *Arrivals
	// MaxConnsPerUID is the most connections one user may hold on UNIX
	// sockets, in their handshake or past it; the next one from that uid
	// is answered X busy and closed. Default DefaultMaxConnsPerUID (16).
	MaxConnsPerUID int
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
	// its hello. Over the network a hello without one of them is
	// answered X unauthorized and closed, before anything about the ring
	// is sent; on a UNIX socket a valid token grants every record and a
	// wrong one is refused the same way. Default: no tokens.
	Tokens []string
	// AnonymousAll lets a network client that proves nothing (neither a
	// verified client certificate nor a token) read every record, on a
	// host whose users are all trusted. Default false: such a client is
	// answered X unauthorized and closed.
	AnonymousAll bool
	// ReaderUIDs and ReaderGroups say who, on a UNIX socket, reads every
	// record: root, these users, and the members of these groups (as
	// primary or supplementary group, when the client connected). Every
	// other local user reads only the records its own processes sent
	// (see Access). Default: root alone.
	ReaderUIDs, ReaderGroups []uint32
	// TracerProvider traces queries: each Q frame is a server span, the
	// child of the client span its request's traceparent names (or its
	// hello's). Default nil: no tracing and no tracing work at all. A
	// noop provider counts as nil.
	TracerProvider trace.TracerProvider
	// Stats returns the daemon's figures for a stats request (an S
	// frame) from a client with the given access; the server adds nothing
	// and leaves nothing out, so deciding what an OwnRecords client may
	// see is Stats's job. It is called from connection goroutines,
	// concurrently. Default nil: the server does not answer S frames, and
	// its hello reply says so.
	Stats func(Access) []Sample
}

func (o Options) withDefaults() Options {
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxHandshakes <= 0 {
		o.MaxHandshakes = DefaultMaxHandshakes
	}
	if o.MaxConnsPerUID <= 0 {
		o.MaxConnsPerUID = DefaultMaxConnsPerUID
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
// number of listeners: TCP (with TLS when Options.TLSConfig is set) and
// UNIX stream sockets, where the kernel tells who the client is and so
// what it may read (Options.ReaderUIDs). Each connection has two goroutines: one reads the
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
	// handshakes are the network connections in their handshake, oldest
	// first: the front one is dropped when MaxHandshakes are.
	handshakes list.List
	served     int            // connections past their hello
	perUID     map[uint32]int // connections on UNIX sockets, by uid
	rejecting  int

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
		perUID:    make(map[uint32]int),
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

// accept starts serving nc, or answers it busy. A network connection
// over MaxHandshakes takes the place of the oldest one still in its
// handshake; a UNIX socket connection over its uid's MaxConnsPerUID is
// answered busy.
func (s *Server) accept(nc net.Conn, log *slog.Logger) {
	var peer *peerCred
	if uc, ok := nc.(*net.UnixConn); ok {
		p, err := peerCredentials(uc)
		if err != nil {
			log.Warn("closing a local connection whose credentials cannot be read", "err", err)
			nc.Close()
			return
		}
		peer = &p
		log = log.With("peer_uid", p.uid, "peer_pid", p.pid)
	} else {
		log = log.With("remote", nc.RemoteAddr().String())
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	var dropped *conn
	if peer != nil {
		if s.perUID[peer.uid] >= s.opts.MaxConnsPerUID {
			s.stats.connsRejectedUID.Add(1)
			s.rejectLocked(nc, &Error{Code: CodeBusy, Message: fmt.Sprintf("too many connections from uid %d (%d)", peer.uid, s.opts.MaxConnsPerUID), RetryAfter: DefaultRetryAfter})
			return
		}
		s.perUID[peer.uid]++
	} else if s.handshakes.Len() >= s.opts.MaxHandshakes {
		dropped = s.dropHandshakeLocked()
	}
	raw := nc
	if s.opts.TLSConfig != nil && peer == nil {
		nc = tls.Server(nc, s.opts.TLSConfig)
	}
	c := newConn(s, nc, log)
	c.raw, c.peer = raw, peer
	if peer == nil {
		c.hs = s.handshakes.PushBack(c)
		c.ready = firstMessageQueued(raw, s.opts.TLSConfig != nil)
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.connsTotal.Add(1)
	s.stats.connsOpen.Add(1)
	s.stats.handshaking.Add(1)
	if dropped != nil {
		dropped.log.Debug("dropping a connection still in its handshake to admit a newer one", "max_handshakes", s.opts.MaxHandshakes)
		dropped.raw.Close() // its goroutine sees the failure and ends
	}
	go c.serve()
}

// dropHandshakeLocked takes the connection to drop to admit a new one out
// of the handshake list: the oldest whose client has not already queued
// its whole first message, for one that has is only waiting for its
// goroutine to run (on a busy host that can take longer than a flood needs
// to push it to the front); the oldest of all if every one has.
func (s *Server) dropHandshakeLocked() *conn {
	e := s.handshakes.Front()
	for f := e; f != nil; f = f.Next() {
		if !f.Value.(*conn).ready {
			e = f
			break
		}
	}
	c := s.handshakes.Remove(e).(*conn)
	c.hs, c.dropped = nil, true
	s.stats.handshakesDropped.Add(1)
	return c
}

// admit moves c, whose client has passed every check, out of its
// handshake: it is served unless the server is full (X busy) or c was
// dropped meanwhile (an empty Error: it is closed already).
func (s *Server) admit(c *conn) *Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.dropped {
		return &Error{}
	}
	s.leaveHandshakeLocked(c)
	if s.served >= s.opts.MaxConns {
		s.stats.connsRejected.Add(1)
		return &Error{Code: CodeBusy, Message: fmt.Sprintf("too many connections (%d)", s.opts.MaxConns), RetryAfter: DefaultRetryAfter}
	}
	s.served++
	c.admitted = true
	return nil
}

// leaveHandshakeLocked takes c out of the handshake counts, once.
func (s *Server) leaveHandshakeLocked(c *conn) {
	if c.hs != nil {
		s.handshakes.Remove(c.hs)
		c.hs = nil
	}
	if !c.handshakeDone {
		c.handshakeDone = true
		s.stats.handshaking.Add(-1)
	}
}

// forget removes a connection that has ended from the server's counts.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.leaveHandshakeLocked(c)
	if c.admitted {
		s.served--
	}
	if c.peer != nil {
		if s.perUID[c.peer.uid]--; s.perUID[c.peer.uid] <= 0 {
			delete(s.perUID, c.peer.uid)
		}
	}
}

// rejectLocked answers nc with e and closes it, in a goroutine of its own
// unless maxRejecting are answering already (then it closes nc at once).
// s.mu is held, and released.
func (s *Server) rejectLocked(nc net.Conn, e *Error) {
	if s.rejecting >= maxRejecting {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.rejecting++
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer func() {
			s.mu.Lock()
			s.rejecting--
			s.mu.Unlock()
			s.wg.Done()
		}()
		nc.SetDeadline(time.Now().Add(lingerTimeout))
		nc.Write(AppendFrame(nil, FrameError, marshalJSON(e)))
		lingerClose(nc)
	}()
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
