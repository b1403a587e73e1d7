//go:build linux

package query

import (
	"bufio"
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// conn is one client connection. serve owns it and the reader goroutine;
// the fields below mu are shared with the reader goroutine.
type conn struct {
	s   *Server
	nc  net.Conn
	raw net.Conn // nc, or the connection under its TLS
	log *slog.Logger
	fr  *FrameReader
	bw  *bufio.Writer
	h   Handler // the query handler, bound once to this conn
	// peer is who connected, on a UNIX socket; nil on the network.
	peer *peerCred
	// access is what the client may read, decided by its handshake.
	access Access

	// Guarded by s.mu: the connection's place in the server's counts.
	hs            *list.Element // in s.handshakes; nil once out of it (or local)
	handshakeDone bool          // no longer counted in ServerStats.Handshakes
	dropped       bool          // closed in its handshake to admit a newer one
	ready         bool          // its first message was queued when accepted, and serve has not started
	admitted      bool          // counted under MaxConns

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
	req   Request
	err   error // a *RequestError
	stats bool  // an S frame, not a query
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
		// One query may be waiting while another runs.
		queries: make(chan pendingQuery, 1),
	}
	c.h = Handler{Record: c.record, Lost: c.lost, Flush: c.flush, Ping: c.ping, PingInterval: s.opts.PingInterval,
		overwritten: func(n uint64) { s.stats.lost.Add(n) }}
	return c
}

// serve runs the connection: handshake, then queries one at a time, until
// the client leaves, breaks the protocol, idles too long, or the server
// shuts down.
func (c *conn) serve() {
	s := c.s
	defer func() {
		s.forget(c)
		s.stats.connsOpen.Add(-1)
		s.wg.Done()
	}()
	s.mu.Lock()
	c.ready = false // reading now: it can stall like any other
	s.mu.Unlock()
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
			if pq.stats {
				if !c.serveStats() {
					c.close(c.readerError())
					return
				}
				idle.Reset(s.opts.IdleTimeout)
				continue
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
		case FrameStats:
			if len(body) != 0 || c.s.opts.Stats == nil {
				c.stopReading(protocolErrorf("unexpected %s frame with a %d-byte body from a client", t, len(body)))
				return
			}
			c.mu.Lock()
			c.queued++
			c.mu.Unlock()
			select {
			case c.queries <- pendingQuery{stats: true}:
			default:
				c.stopReading(protocolErrorf("stats request sent while a query is waiting"))
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
	k := KindOf(req)
	span := c.startQuerySpan(req)
	defer span.finish(c)
	if pq.err != nil {
		s.stats.requests[k][outcomeBadRequest].Add(1)
		return c.sendError(span.answer(&Error{ID: req.ID, Code: CodeBadRequest, Message: pq.err.Error()}))
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
	end, err := runAs(ctx, s.r, c.access, s.opts.Arrivals, *req, c.h)
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
		s.stats.durations[k].Observe(time.Since(start))
	}
	return ok
}

// serveStats answers an S frame with the figures the client's access
// allows. It returns false when the connection cannot go on.
func (c *conn) serveStats() bool {
	defer func() {
		c.mu.Lock()
		c.queued--
		c.mu.Unlock()
	}()
	reply := StatsReply{Access: AccessAllName, Time: time.Now().UnixNano(), Samples: c.s.opts.Stats(c.access)}
	if _, own := c.access.Own(); own {
		reply.Access = AccessOwnName
	}
	if reply.Samples == nil {
		reply.Samples = []Sample{}
	}
	c.writeFrame(FrameFigures, marshalJSON(reply))
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
