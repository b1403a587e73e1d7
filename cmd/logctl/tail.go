package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/litetrace"
	"github.com/collectord/collectord/internal/rundir"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// tailOptions are the parsed flags of `logctl tail`.
type tailOptions struct {
	req        query.Request
	follow     bool
	showCursor bool
	addr       string // unix:PATH or host:port
	ring       string
	own        bool // with ring: only the caller's own records
	out        formatter
	tracer     trace.TracerProvider // spans for server queries; nil: none
	tls        *tls.Config          // nil: plain TCP
	token      string               // bearer token for the hello; "" for none
}

// fieldFlags collects repeated --field KEY=VALUE flags.
type fieldFlags map[string]string

func (f fieldFlags) String() string { return "" }

func (f fieldFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	f[k] = val
	return nil
}

// unitFlags collects repeated -u/--unit patterns.
type unitFlags []string

func (u *unitFlags) String() string { return "" }

func (u *unitFlags) Set(v string) error {
	*u = append(*u, v)
	return nil
}

func parseTailFlags(args []string, stdout, stderr io.Writer) (*tailOptions, error) {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &tailOptions{}
	n := countFlag(10)
	fs.Var(&n, "n", "show the latest `N` matching records (all: every one the ring holds)")
	fs.BoolVar(&o.follow, "f", false, "follow: keep printing records as they arrive")
	fs.BoolVar(&o.follow, "follow", false, "same as -f")
	since := fs.String("since", "", "records received at or after `TIME` (RFC 3339, or relative like 10m, 2h, 1d)")
	until := fs.String("until", "", "records received before `TIME` (RFC 3339 or relative)")
	prio := ""
	fs.StringVar(&prio, "p", "", "`priority` name or number: err means err and more severe")
	fs.StringVar(&prio, "priority", "", "same as -p")
	fs.StringVar(&o.req.Filter.Tag, "t", "", "only records with this `tag`")
	fs.StringVar(&o.req.Filter.Tag, "tag", "", "same as -t")
	pid := fs.String("pid", "", "only records from this trusted sender `pid`")
	uid := fs.String("uid", "", "only records from this trusted sender `uid`")
	fields := fieldFlags{}
	fs.Var(fields, "field", "only records with structured field `KEY=VALUE` (repeatable)")
	traceID := fs.String("trace-id", "", "only records carrying this trace `ID` (32 hex digits) in a trace_id field")
	fs.Var((*unitFlags)(&o.req.Filter.Unit), "u", "only records from systemd `UNIT` (glob; a plain name means NAME.service; repeatable)")
	fs.Var((*unitFlags)(&o.req.Filter.Unit), "unit", "same as -u")
	fs.StringVar(&o.req.Filter.Comm, "comm", "", "only records whose trusted command name (/proc/PID/comm) is `NAME`")
	fs.StringVar(&o.req.Filter.Grep, "g", "", "only records whose message matches `REGEX`")
	fs.StringVar(&o.req.Filter.Grep, "grep", "", "same as -g")
	after := fs.String("after-cursor", "", "start after `CURSOR` (as printed by --show-cursor)")
	fs.BoolVar(&o.showCursor, "show-cursor", false, "print the cursor after the last record")
	output := fs.String("o", "short", "output `format`: short, short-iso, json, raw")
	fs.StringVar(&o.addr, "addr", "", "collectord's query server: `unix:PATH` (default: the local socket, "+strings.Join(rundir.QuerySockets(), " or ")+") or HOST:PORT (TCP)")
	fs.StringVar(&o.ring, "ring", "", "read this ring `file` directly instead of asking the daemon")
	fs.BoolVar(&o.own, "own", false, "with --ring: only the records your own processes sent, as the daemon shows them to users outside the readers' groups")
	useTLS := fs.Bool("tls", false, "speak TLS to the query server, trusting the system's CAs (implied by the --tls-* flags)")
	tlsCA := fs.String("tls-ca", "", "trust the CA certificates in `file` (PEM) for the query server's certificate")
	tlsCert := fs.String("tls-cert", "", "present the client certificate in `file` (PEM; mutual TLS)")
	tlsKey := fs.String("tls-key", "", "the client certificate's key `file` (PEM)")
	tokenFile := fs.String("token-file", "", "send the bearer token in `file` (its first line) to the query server")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: logctl tail [-n N|all] [-f] [filters] [-o FORMAT] [--addr unix:PATH | --addr HOST:PORT [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--token-file FILE] | --ring PATH [--own]]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil, err
		}
		return nil, usageError{err}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	setFlags := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { setFlags[f.Name] = true })
	if setFlags["ring"] && setFlags["addr"] {
		return nil, usageError{errors.New("--ring and --addr: give one or the other")}
	}
	if o.own && o.ring == "" {
		return nil, usageError{errors.New("--own is for --ring: over a socket the daemon decides what you see")}
	}
	if o.addr == "" {
		o.addr = query.UnixPrefix + localSocket()
	}
	if err := o.parseAccess(setFlags, *useTLS, *tlsCA, *tlsCert, *tlsKey, *tokenFile, stderr); err != nil {
		return nil, err
	}
	var err error
	if o.out.format, err = parseOutput(*output); err != nil {
		return nil, usageError{err}
	}
	o.req.N = new(int64(n))
	if *after != "" {
		c, err := strconv.ParseUint(strings.TrimPrefix(*after, "s="), 10, 64)
		if err != nil {
			return nil, usageError{fmt.Errorf("--after-cursor %q: not a cursor", *after)}
		}
		o.req.After = &c
		if !setFlags["n"] {
			o.req.N = nil // everything after the cursor
		}
	}
	now := time.Now()
	if o.req.Filter.Since, err = parseWhen(*since, now); err != nil {
		return nil, usageError{fmt.Errorf("--since: %w", err)}
	}
	if o.req.Filter.Until, err = parseWhen(*until, now); err != nil {
		return nil, usageError{fmt.Errorf("--until: %w", err)}
	}
	if o.req.Filter.Since != 0 && !setFlags["n"] && o.req.After == nil {
		o.req.N = new(int64(query.NoMaxN)) // --since alone shows the whole range
	}
	if prio != "" {
		sev, err := record.ParseSeverity(prio)
		if err != nil {
			return nil, usageError{fmt.Errorf("-p: %w", err)}
		}
		o.req.Filter.Priority = new(int(sev))
	}
	for _, id := range []struct {
		flag string
		val  string
		dst  **uint32
	}{{"--pid", *pid, &o.req.Filter.PID}, {"--uid", *uid, &o.req.Filter.UID}} {
		if id.val == "" {
			continue
		}
		v, err := strconv.ParseUint(id.val, 10, 32)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s %q: not a number", id.flag, id.val)}
		}
		*id.dst = new(uint32(v))
	}
	if len(fields) > 0 {
		o.req.Filter.Fields = fields
	}
	o.req.Filter.TraceID = strings.ToLower(*traceID)
	o.req.Follow = o.follow
	if err := o.req.Compile(); err != nil {
		return nil, usageError{err}
	}
	o.out.loc = time.Local
	o.out.hostname, _ = os.Hostname()
	o.out.color = wantColor(stdout)
	return o, nil
}

// parseAccess loads the credentials for the query server named by the
// --tls* and --token-file flags.
func (o *tailOptions) parseAccess(set map[string]bool, useTLS bool, ca, cert, key, tokenFile string, stderr io.Writer) error {
	tlsSet := useTLS || ca != "" || cert != "" || key != ""
	if o.ring != "" && (tlsSet || tokenFile != "") {
		return usageError{errors.New("--ring reads the file directly: --tls, --tls-ca, --tls-cert, --tls-key and --token-file are for the query server")}
	}
	if tlsSet && (!set["addr"] || strings.HasPrefix(o.addr, query.UnixPrefix)) {
		return usageError{errors.New("--tls, --tls-ca, --tls-cert and --tls-key are for TCP: give --addr HOST:PORT")}
	}
	if (cert == "") != (key == "") {
		return usageError{errors.New("--tls-cert and --tls-key: give both or neither")}
	}
	if tlsSet {
		cfg, err := access.ClientTLS(ca, cert, key, "")
		if err != nil {
			return fmt.Errorf("--tls-ca/--tls-cert/--tls-key: %w", err)
		}
		o.tls = cfg
	}
	if tokenFile != "" {
		tok, warn, err := access.ReadToken(tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		if warn != "" {
			fmt.Fprintln(stderr, "logctl: warning: "+warn)
		}
		o.token = tok
	}
	return nil
}

// countFlag is -n: a count of records, or "all" (query.NoMaxN: as many as
// the ring holds).
type countFlag int64

func (c countFlag) String() string {
	if c == query.NoMaxN {
		return "all"
	}
	return strconv.FormatInt(int64(c), 10)
}

func (c *countFlag) Set(s string) error {
	if s == "all" {
		*c = query.NoMaxN
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return errors.New("want a number or all")
	case n < 0:
		return errors.New("must not be negative")
	}
	*c = countFlag(n)
	return nil
}

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
				if _, err := p.out.Write(p.line); err != nil {
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
	p := &printer{out: bufio.NewWriterSize(stdout, 64<<10), stderr: stderr, f: &o.out}
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
			c, err := query.Dial(ctx, o.addr, query.DialOptions{Client: "logctl", TracerProvider: o.tracer, TLSConfig: o.tls, Token: o.token})
			if err != nil {
				return query.End{}, err
			}
			defer c.Close()
			down, backoff = time.Time{}, backoffMin
			if reconnecting {
				fmt.Fprintf(p.stderr, "logctl: reconnected to %s\n", o.addr)
				reconnecting = false
			}
			h := c.Hello()
			if ringID != "" && h.RingID != ringID {
				// Sequence numbers restarted: everything in the new ring
				// is new to us.
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
			if req.N != nil && h.MaxN > 0 && *req.N > h.MaxN {
				req.N = new(h.MaxN) // an older server, which refuses more
			}
			return c.Query(ctx, req, p.handler())
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
