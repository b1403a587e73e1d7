package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/internal/litetrace"
	"github.com/collectord/collectord/internal/rundir"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// localSocket returns the local query socket to ask: the first of
// rundir.QuerySockets that is a socket, else the last (whose absence the
// error will then name).
func localSocket() string {
	socks := rundir.QuerySockets()
	for _, s := range socks {
		if st, err := os.Stat(s); err == nil && st.Mode().Type() == os.ModeSocket {
			return s
		}
	}
	return socks[len(socks)-1]
}

// parseWhen parses an RFC 3339 time or a duration before now ("10m",
// "1d"), returning Unix nanoseconds; "" is 0.
func parseWhen(s string, now time.Time) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	d := strings.TrimPrefix(s, "-")
	var dur time.Duration
	var err error
	if days, ok := strings.CutSuffix(d, "d"); ok {
		var n float64
		n, err = strconv.ParseFloat(days, 64)
		dur = time.Duration(n * 24 * float64(time.Hour))
	} else {
		dur, err = time.ParseDuration(d)
	}
	if err != nil || dur < 0 {
		return 0, fmt.Errorf("%q: want RFC 3339 (2026-11-24T10:00:00Z) or a duration ago (10m, 2h, 1d)", s)
	}
	return now.Add(-dur).UnixNano(), nil
}

// wantColor: colour only on a terminal, and never with NO_COLOR set.
func wantColor(w io.Writer) bool {
	return os.Getenv("NO_COLOR") == "" && isTerminal(w)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// printer turns query results into output lines.
type printer struct {
	out     *bufio.Writer
	stderr  io.Writer
	f       *formatter
	entry   record.Entry
	line    []byte
	last    uint64 // seq of the last record printed
	pos     uint64 // seq of the last record printed or reported lost: where to resume
	printed bool
	count   int64 // records printed
	// With --reverse, lines are held until the response is complete:
	// held is their text, ends where each one ends.
	reverse bool
	held    []byte
	ends    []int
}

// writeReversed writes the held lines, newest first.
func (p *printer) writeReversed() error {
	for i := len(p.ends) - 1; i >= 0; i-- {
		start := 0
		if i > 0 {
			start = p.ends[i-1]
		}
		if _, err := p.out.Write(p.held[start:p.ends[i]]); err != nil {
			return outputError{err}
		}
	}
	p.held, p.ends = nil, nil
	return nil
}

// outputError is a failure to write the output: not something a reconnect
// can cure.
type outputError struct{ err error }

func (e outputError) Error() string { return e.err.Error() }
func (e outputError) Unwrap() error { return e.err }

func (p *printer) handler() query.Handler {
	return query.Handler{
		Record: func(rec query.Record) error {
			if err := record.Decode(rec.Payload, &p.entry); err != nil {
				fmt.Fprintf(p.stderr, "logctl: record %d: %v\n", rec.Seq, err)
			} else {
				p.line = p.f.appendRecord(p.line[:0], rec.Seq, rec.Time, &p.entry)
				if p.reverse {
					p.held = append(p.held, p.line...)
					p.ends = append(p.ends, len(p.held))
				} else if _, err := p.out.Write(p.line); err != nil {
					return outputError{err}
				}
			}
			p.last, p.pos, p.printed = rec.Seq, rec.Seq, true
			p.count++
			return nil
		},
		Lost: func(lost, next uint64) error {
			if err := p.out.Flush(); err != nil {
				return outputError{err}
			}
			if lost == 0 {
				// Only one's own records are shown, and the count would
				// include others'.
				fmt.Fprintf(p.stderr, "logctl: records were overwritten before they were read (how many of them were yours is not known); continuing at %d\n", next)
			} else {
				fmt.Fprintf(p.stderr, "logctl: %d records lost (overwritten before they were read); continuing at %d\n", lost, next)
			}
			p.pos = next - 1
			return nil
		},
		Flush: func() error {
			if err := p.out.Flush(); err != nil {
				return outputError{err}
			}
			return nil
		},
	}
}

func runTail(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseTailFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	if o.follow {
		var stop context.CancelFunc
		ctx, stop = interruptible(ctx)
		defer stop()
	}
	p := &printer{out: bufio.NewWriterSize(stdout, 64<<10), stderr: stderr, f: &o.out, reverse: o.reverse}
	if o.ring == "" {
		// Spans for the request, exported when OTEL_* asks for them; the
		// daemon's spans join the same trace.
		tp, flush, terr := litetrace.Setup("logctl")
		if terr != nil {
			fmt.Fprintf(stderr, "logctl: tracing off: %v\n", terr)
		}
		var span trace.Span
		ctx, span = tp.Tracer("logctl").Start(ctx, "logctl tail")
		o.tracer = tp
		defer func() {
			span.End()
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			if err := flush(fctx); err != nil {
				fmt.Fprintf(stderr, "logctl: %v\n", err)
			}
		}()
	}
	var end query.End
	if o.ring != "" {
		end, err = tailRing(ctx, o, p)
	} else {
		end, err = tailServer(ctx, o, p)
	}
	if rerr := p.writeReversed(); err == nil && rerr != nil {
		err = rerr
	}
	if ferr := p.out.Flush(); err == nil && ferr != nil {
		err = outputError{ferr}
	}
	if o.showCursor && (err == nil || ctx.Err() != nil) {
		cursor := max(end.Cursor, p.last)
		fmt.Fprintf(stdout, "-- cursor: %d\n", cursor)
	}
	if ctx.Err() != nil {
		return nil // interrupted: a normal end for -f
	}
	return err
}

func tailRing(ctx context.Context, o *tailOptions, p *printer) (query.End, error) {
	r, err := shmring.OpenReader(o.ring)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return query.End{}, fmt.Errorf("%w: reading the ring needs read permission on it (run as its owner or a member of its group)", err)
		}
		return query.End{}, err
	}
	defer r.Close()
	access := query.AllRecords()
	if o.own {
		access = query.OwnRecords(uint32(os.Getuid()))
	}
	return query.RunAs(ctx, r, access, o.req, p.handler())
}

// Reconnection backoff: exponential with full jitter.
const (
	backoffMin = 50 * time.Millisecond
	backoffMax = 5 * time.Second
	// resumeWindow is how long a query without --follow keeps trying to
	// reconnect after the daemon went away mid-response (a restart, an
	// upgrade) before it fails.
	resumeWindow = 5 * time.Second
)

// tailServer runs the query against the daemon. It survives the daemon
// going away mid-response: it reconnects with backoff and resumes after the
// last record it printed or was told was lost, so every record is printed
// exactly once and a real gap is reported on stderr. With --follow it
// retries forever; without, it gives up after resumeWindow and fails,
// saying where to resume. It does not retry when the first connection
// fails, nor when writing the output fails.
func tailServer(ctx context.Context, o *tailOptions, p *printer) (query.End, error) {
	req := o.req
	// N bounds the whole response, not only a follow's backlog: a resumed
	// query asks for what is left.
	bounded := o.req.N != nil && (o.req.After != nil || !o.req.Follow)
	backoff := backoffMin
	var ringID string
	var startHead uint64 // the head when the daemon first answered; 0 before
	var down time.Time   // when the current run of failed attempts began
	reconnecting := false
	for {
		end, err := func() (query.End, error) {
			// The first connection sends the query right behind the hello
			// (one round trip); a reconnection waits for the hello reply,
			// which decides where to resume.
			pipeline := ringID == ""
			c, err := query.Dial(ctx, o.addr, query.DialOptions{Client: "logctl", TracerProvider: o.tracer, TLSConfig: o.tls, Token: o.token, Pipeline: pipeline})
			if err != nil {
				return query.End{}, dialHint(err, o.addr)
			}
			defer c.Close()
			down, backoff = time.Time{}, backoffMin
			if reconnecting {
				fmt.Fprintf(p.stderr, "logctl: reconnected to %s\n", o.addr)
				reconnecting = false
			}
			onHello := func(h query.HelloReply) error {
				if ringID != "" && h.RingID != ringID {
					// Sequence numbers restarted: everything in the new
					// ring is new to us.
					fmt.Fprintf(p.stderr, "logctl: the ring was recreated (id %s, was %s): sequence numbers restarted; continuing from its first record\n", h.RingID, ringID)
					p.pos, p.last = 0, 0
					req.After = new(uint64(0))
					if !bounded {
						req.N = nil
					}
				}
				ringID = h.RingID
				if startHead == 0 {
					startHead = h.Head
					if h.Access == query.AccessOwnName && h.UID != nil && isTerminal(p.stderr) {
						fmt.Fprintf(p.stderr, "logctl: showing only the records of your own processes (uid %d); the daemon's readers' groups see every record\n", *h.UID)
					}
				}
				return nil
			}
			hd := p.handler()
			hd.Hello = onHello
			if !pipeline {
				onHello(c.Hello())
				req.N = clampN(req.N, c.Hello())
			}
			end, err := c.Query(ctx, req, hd)
			var qerr *query.Error
			if pipeline && errors.As(err, &qerr) && qerr.Code == query.CodeLimit {
				if n := clampN(req.N, c.Hello()); n != req.N {
					req.N = n // an older server, which refuses more
					end, err = c.Query(ctx, req, hd)
				}
			}
			return end, err
		}()
		if ctx.Err() != nil {
			return end, nil
		}
		if err == nil && end.Reason != query.ReasonShutdown {
			return end, nil // done
		}
		if down.IsZero() {
			down = time.Now()
		}
		var qerr *query.Error
		var oerr outputError
		retryable := err == nil || isConnError(err) || (errors.As(err, &qerr) && qerr.Code == query.CodeBusy)
		if errors.As(err, &oerr) || !retryable || (!o.follow && (startHead == 0 || time.Since(down) > resumeWindow)) {
			if err == nil {
				err = errors.New("collectord shut down before the response was complete")
			}
			if !o.follow && p.printed {
				err = fmt.Errorf("%w (resume with --after-cursor %d)", err, max(end.Cursor, p.pos))
			}
			return end, err
		}
		// Resume after whatever was printed, reported lost or examined
		// last. A follow that has none of these resumes from the head it
		// started at, so that records stored while it reconnects are not
		// skipped. A query without --follow that printed nothing is sent
		// again as it was: its cursor may come from an interrupted scan
		// for the latest records.
		resume, known := max(end.Cursor, p.pos), p.printed || p.pos > 0 || req.After != nil || (o.follow && end.Reason != "")
		if req.After != nil {
			resume = max(resume, *req.After)
		}
		if !known && o.follow && startHead > 0 {
			resume, known = startHead-1, true
		}
		if known {
			req.After = &resume
			req.N = nil
			if bounded {
				req.N = new(max(0, *o.req.N-p.count))
			}
		}
		// The backoff restarts at backoffMin after every connection: a
		// daemon that restarts or hands over is usually back at once.
		wait := time.Duration(rand.Int64N(int64(backoff)))
		if errors.As(err, &qerr) && qerr.RetryAfter > 0 {
			wait = qerr.RetryAfter + wait/2
		}
		if err != nil && !reconnecting {
			fmt.Fprintf(p.stderr, "logctl: %v; reconnecting\n", err)
			reconnecting = true
		}
		select {
		case <-ctx.Done():
			return end, nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// clampN returns n, or a pointer to the largest n the server whose hello
// reply is h accepts when n is more: older servers refuse more.
func clampN(n *int64, h query.HelloReply) *int64 {
	if n != nil && h.MaxN > 0 && *n > h.MaxN {
		return new(h.MaxN)
	}
	return n
}

// isConnError reports whether err is a failure of the connection rather
// than an answer from the server.
func isConnError(err error) bool {
	if query.IsRefused(err) {
		return false // not cured by reconnecting
	}
	var qerr *query.Error
	if errors.As(err, &qerr) {
		return qerr.Code == query.CodeShutdown
	}
	return true
}
