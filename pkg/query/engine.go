//go:build linux

package query

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// ErrShutdown is the context cause that makes Run end a response with
// ReasonShutdown instead of ReasonCancelled. Server.Shutdown cancels running
// queries with it; a caller of Run may too, with context.WithCancelCause.
var ErrShutdown = errors.New("server shutting down")

// Run produces the response to req from the ring r, calling h for each
// matching record and each loss, in sequence order. It is what the Server
// runs for each query, and what a program that maps the ring itself (logctl
// tail --ring) runs to get the same records without a server.
//
//   - Without req.After: the latest N matching records (N defaults to
//     DefaultN) among those published when Run starts. Run finds where they
//     start by scanning backwards from the head, one record at a time, then
//     delivers them forwards, so memory stays constant whatever N is.
//   - With req.After: the matching records after it, at most N if N is
//     given, up to the head as it was when Run started (with Follow: no
//     bound but N).
//   - With req.Follow: then every matching record as it is published,
//     woken by the ring's futex, until ctx is done. Before waiting, Run
//     calls h.Flush; after h.PingInterval without a record, h.Ping.
//
// Each record is decoded into one reused record.Entry for filtering only
// (and not at all when the filter does not look inside entries); Run does
// not allocate per record.
//
// When ctx is done Run stops within a few hundred records and returns
// ReasonShutdown if context.Cause(ctx) is ErrShutdown, ReasonCancelled
// otherwise. Either way the error is nil: cancelling is how a follow ends.
//
// Run returns (End, nil) when the response is complete, End.Reason saying
// why, and End.Cursor where to resume. It returns an error, with End.Cursor
// still valid (the last record examined before the failure), when req is
// invalid (a *RequestError), when a Handler function fails (that error), or
// when the ring is closed (shmring.ErrClosed). The Reader must stay open
// while Run uses it.
func Run(ctx context.Context, r *shmring.Reader, req Request, h Handler) (End, error) {
	return RunAs(ctx, r, AllRecords(), req, h)
}

// RunAs is Run for a reader with access a: with OwnRecords(uid), only the
// records uid's processes sent, and loss reported without a count (see
// Access). The Server runs each query with the access its client was
// granted; logctl tail --ring --own runs it with the caller's uid, so that
// both give a user the same answer.
func RunAs(ctx context.Context, r *shmring.Reader, a Access, req Request, h Handler) (End, error) {
	return runAs(ctx, r, a, nil, req, h)
}

// runAs is RunAs with the Arrivals of the process writing r, if any.
func runAs(ctx context.Context, r *shmring.Reader, a Access, arrivals *Arrivals, req Request, h Handler) (End, error) {
	end := End{ID: req.ID}
	if err := req.Compile(); err != nil {
		if req.After != nil {
			end.Cursor = *req.After
		}
		return end, err
	}
	x := runner{ctx: ctx, r: r, f: &req.Filter, h: &h, quiet: time.Now(), arrivals: arrivals}
	x.uid, x.own = a.Own()
	if x.own {
		x.mine = func(p []byte) bool {
			uid, ok := record.PeekUID(p)
			return ok && uid == x.uid
		}
	}
	x.interval = h.PingInterval
	if x.interval <= 0 {
		x.interval = DefaultPingInterval
	}
	defer x.stopPing()
	reason, err := x.run(&req)
	end.Cursor = x.last
	end.Reason = reason
	return end, err
}

// runner is the state of one Run.
type runner struct {
	ctx  context.Context
	r    *shmring.Reader
	c    *shmring.Cursor
	f    *Filter
	h    *Handler
	e    record.Entry // reused for every record
	own  bool         // only the records whose trusted uid is uid
	uid  uint32
	mine func([]byte) bool // with own: whether a payload's prefix is uid's
	// arrivals, with own, says when uid's records arrive; nil if unknown.
	arrivals *Arrivals

	last      uint64 // the last sequence number examined or reported lost
	sent      int64  // records delivered
	unflushed bool   // something was delivered since the last Flush
	steps     uint   // records examined, to space out ctx checks

	interval time.Duration
	quiet    time.Time // when a follow last delivered something or pinged
	pace     shmring.Pace
	pingCtx  context.Context
	pingStop context.CancelFunc
}

// checkEvery is how many records Run examines between looks at ctx.
const checkEvery = 256

// scanCheckEvery is the same for the backward scan of a latest query.
const scanCheckEvery = 4096

func (x *runner) run(req *Request) (Reason, error) {
	head := x.r.Head()
	limit := int64(-1) // records to deliver; -1: no limit
	if req.After != nil {
		x.last = *req.After
		x.c = x.r.Cursor(*req.After + 1)
		if req.N != nil {
			limit = *req.N
		}
	} else {
		n := int64(DefaultN)
		if req.N != nil {
			n = *req.N
		}
		start := x.latestStart(head, n)
		x.last = start - 1
		x.c.Seek(start)
	}
	if limit == 0 {
		return ReasonDone, nil
	}
	for {
		rec, lost, err := x.next()
		if lost > 0 {
			next := x.c.Pos()
			if err == nil {
				next = rec.Seq
			}
			if x.h.overwritten != nil {
				x.h.overwritten(lost)
			}
			if x.own {
				// They may have been anybody's: say where the stream
				// continues, not how many records others had.
				lost = 0
			}
			if err := x.h.lost(lost, next); err != nil {
				return "", err
			}
			x.last = next - 1
			x.unflushed = true
		}
		if err != nil {
			if !errors.Is(err, shmring.ErrNoRecord) {
				return "", fmt.Errorf("read ring: %w", err)
			}
			x.last = max(x.last, x.c.Pos()-1) // NextWhere passed over the rest
			if !req.Follow {
				return ReasonDone, nil
			}
			if reason, err := x.wait(); reason != "" || err != nil {
				return reason, err
			}
			continue
		}
		if !req.Follow && rec.Seq >= head {
			// Published after Run started: not part of this response.
			return ReasonDone, nil
		}
		if x.match(rec) {
			if err := x.h.record(Record{Seq: rec.Seq, Time: rec.Time, Payload: rec.Payload}); err != nil {
				return "", err
			}
			x.sent++
			x.unflushed = true
		}
		x.last = rec.Seq
		if limit > 0 && x.sent >= limit {
			return ReasonDone, nil
		}
		if x.steps++; x.steps%checkEvery == 0 {
			if reason := x.stopped(); reason != "" {
				return reason, nil
			}
		}
	}
}

// next reads the next record; a query over one user's records passes over
// the others' without copying or checking them.
func (x *runner) next() (shmring.Record, uint64, error) {
	if x.own {
		return x.c.NextWhere(x.mine)
	}
	return x.c.Next()
}

// latestStart returns the sequence number from which reading forwards up to
// head yields the latest n matching records (head when there are none), and
// leaves x.c allocated. It scans backwards one record at a time: memory
// stays constant however large n is.
func (x *runner) latestStart(head uint64, n int64) uint64 {
	x.c = x.r.Cursor(head)
	if n == 0 || head <= shmring.FirstSeq {
		return head
	}
	oldest := x.r.Stats().Oldest
	if x.matchesAll() {
		if head-oldest <= uint64(n) {
			return oldest
		}
		return head - uint64(n)
	}
	start, found := head, int64(0)
	for s, i := head-1, 1; s >= shmring.FirstSeq; s, i = s-1, i+1 {
		if i%scanCheckEvery == 0 && x.ctx.Err() != nil {
			// Deliver what was found; the forward pass ends at once.
			break
		}
		x.c.Seek(s)
		rec, _, err := x.c.Next()
		if err != nil || rec.Seq != s {
			// s is gone: overwritten (and everything older with it),
			// or damaged (skip it).
			if s < x.r.Stats().Oldest {
				break
			}
			continue
		}
		if x.match(rec) {
			found++
			start = s
			if found == n {
				break
			}
		}
	}
	return start
}

// matchesAll reports whether every record matches: no filter condition
// and access to every record.
func (x *runner) matchesAll() bool { return !x.own && x.f.matchesAll() }

// match applies the access and the filter, decoding the payload only if
// the filter needs it. A payload that does not decode matches only filters
// that do not look inside entries.
func (x *runner) match(rec shmring.Record) bool {
	f := x.f
	if x.own {
		if uid, ok := record.PeekUID(rec.Payload); !ok || uid != x.uid {
			return false
		}
	}
	if f.matchesAll() {
		return true
	}
	if !f.matchTime(rec.Time) {
		return false
	}
	if !f.needsEntry() {
		return true
	}
	if record.Decode(rec.Payload, &x.e) != nil {
		return false
	}
	return f.Match(rec.Time, &x.e)
}

// stopped returns the reason to end the response if ctx is done.
func (x *runner) stopped() Reason {
	if x.ctx.Err() == nil {
		return ""
	}
	if errors.Is(context.Cause(x.ctx), ErrShutdown) {
		return ReasonShutdown
	}
	return ReasonCancelled
}

// wait flushes, then blocks until a record past the cursor is published,
// pinging while the follow is quiet. It returns a reason when ctx ends the
// response.
func (x *runner) wait() (Reason, error) {
	if x.unflushed {
		if err := x.h.flush(); err != nil {
			return "", err
		}
		x.unflushed = false
		x.quiet = time.Now()
	}
	for {
		if reason := x.stopped(); reason != "" {
			return reason, nil
		}
		// A follow of one user's records first sleeps until that user's
		// records arrive, when the writer is in this process. Then, and
		// for every other follow, paced: under a high ingest rate every
		// follow of the ring wakes in the same tick, at most once a
		// millisecond, and reads everything published meanwhile in one
		// pass.
		var err error
		if x.own && x.arrivals != nil {
			_, err = x.arrivals.wait(x.waitCtx(), x.uid, x.c.Pos())
		}
		if err == nil {
			err = x.r.WaitPaced(x.waitCtx(), x.c.Pos(), &x.pace)
		}
		if err == nil {
			return "", nil
		}
		if reason := x.stopped(); reason != "" {
			return reason, nil
		}
		if errors.Is(err, shmring.ErrClosed) {
			return "", fmt.Errorf("wait for records: %w", err)
		}
		// The ping deadline passed (perhaps a stale one: the next
		// waitCtx sets the right one).
		if now := time.Now(); now.Sub(x.quiet) >= x.interval {
			if err := x.h.ping(); err != nil {
				return "", err
			}
			x.quiet = now
		}
	}
}

// waitCtx returns the context to wait under: ctx itself, or, when the
// handler wants pings, one that expires when the next ping is due. It is
// replaced only when it has expired, so a busy follow does not allocate a
// context per wake-up.
func (x *runner) waitCtx() context.Context {
	if x.h.Ping == nil {
		return x.ctx
	}
	if x.pingCtx == nil || x.pingCtx.Err() != nil {
		x.stopPing()
		x.pingCtx, x.pingStop = context.WithDeadline(x.ctx, x.quiet.Add(x.interval))
	}
	return x.pingCtx
}

func (x *runner) stopPing() {
	if x.pingStop != nil {
		x.pingStop()
		x.pingStop = nil
	}
}
