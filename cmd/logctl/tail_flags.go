package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/internal/access"
	"github.com/collectord/collectord/internal/cmdline"
	"github.com/collectord/collectord/internal/rundir"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/record"
)

// tailOptions are the parsed flags of `logctl tail`.
type tailOptions struct {
	req        query.Request
	follow     bool
	reverse    bool // newest first
	showCursor bool
	addr       string // unix:PATH or host:port
	ring       string
	own        bool // with ring: only the caller's own records
	out        formatter
	tracer     trace.TracerProvider // spans for server queries; nil: none
	tls        *tls.Config          // nil: plain TCP
	token      string               // bearer token for the hello; "" for none
}

// tailFlags are the values of `logctl tail`'s flags as given, before
// parseTailFlags checks and combines them. A new flag is a field here and
// one line in newTailFlags.
type tailFlags struct {
	n                           countFlag
	follow, reverse, showCursor bool
	since, until, after         string
	prio, tag, grep, comm       string
	units                       []string
	pid, uid, traceID           string
	fields                      fieldFlags
	output                      string
	addr, ring                  string
	own, useTLS                 bool
	tlsCA, tlsCert, tlsKey      string
	tokenFile                   string
}

// newTailFlags defines tail's flags: the single definition that parsing,
// --help, the man page and the completions use.
func newTailFlags() (*tailFlags, *pflag.FlagSet) {
	f := &tailFlags{n: 10, fields: fieldFlags{}}
	fs := cmdline.NewFlagSet("tail")
	fs.VarP(&f.n, "lines", "n", "show the latest `N` matching records (all: every one the ring holds)")
	fs.BoolVarP(&f.follow, "follow", "f", false, "follow: keep printing records as they arrive")
	fs.BoolVarP(&f.reverse, "reverse", "r", false, "newest first (not with --follow)")
	fs.StringVarP(&f.output, "output", "o", "short", "output `FORMAT`: short, short-iso, json, json-pretty, cat")
	cmdline.Values(fs, "output", outputNames...)
	fs.StringVarP(&f.since, "since", "S", "", "records received at or after `TIME` (RFC 3339, or relative like 10m, 2h, 1d)")
	fs.StringVarP(&f.until, "until", "U", "", "records received before `TIME` (RFC 3339 or relative)")
	fs.StringVarP(&f.prio, "priority", "p", "", "`PRIORITY` name or number: err means err and more severe")
	cmdline.Values(fs, "priority", "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
	fs.StringVarP(&f.tag, "tag", "t", "", "only records with this `TAG`")
	fs.StringVar(&f.pid, "pid", "", "only records from this trusted sender `PID`")
	fs.StringVar(&f.uid, "uid", "", "only records from this trusted sender `UID`")
	fs.Var(f.fields, "field", "only records with structured field `KEY=VALUE` (repeatable)")
	fs.StringVar(&f.traceID, "trace-id", "", "only records carrying this trace `ID` (32 hex digits) in a trace_id field")
	fs.StringArrayVarP(&f.units, "unit", "u", nil, "only records from systemd `UNIT` (glob; a plain name means NAME.service; repeatable)")
	fs.StringVar(&f.comm, "comm", "", "only records whose trusted command name (/proc/PID/comm) is `NAME`")
	fs.StringVarP(&f.grep, "grep", "g", "", "only records whose message matches `REGEX`")
	fs.StringVar(&f.after, "after-cursor", "", "start after `CURSOR` (as printed by --show-cursor)")
	fs.BoolVar(&f.showCursor, "show-cursor", false, "print the cursor after the last record")
	fs.StringVar(&f.addr, "addr", "", "collectord's query server: `unix:PATH` (default: the local socket, "+rundir.SystemQuerySocket+", or for a user first their own daemon's under $XDG_RUNTIME_DIR) or HOST:PORT (TCP)")
	fs.StringVar(&f.ring, "ring", "", "read this ring `FILE` directly instead of asking the daemon")
	cmdline.Files(fs, "ring")
	fs.BoolVar(&f.own, "own", false, "with --ring: only the records your own processes sent, as the daemon shows them to users outside the readers' groups")
	addAccessFlags(fs, &f.useTLS, &f.tlsCA, &f.tlsCert, &f.tlsKey, &f.tokenFile)
	return f, fs
}

// addAccessFlags defines the flags that carry credentials to the query
// server, shared by every command that asks it.
func addAccessFlags(fs *pflag.FlagSet, useTLS *bool, ca, cert, key, tokenFile *string) {
	fs.BoolVar(useTLS, "tls", false, "speak TLS to the query server, trusting the system's CAs (implied by the --tls-* flags)")
	fs.StringVar(ca, "tls-ca", "", "trust the CA certificates in `FILE` (PEM) for the query server's certificate")
	fs.StringVar(cert, "tls-cert", "", "present the client certificate in `FILE` (PEM; mutual TLS)")
	fs.StringVar(key, "tls-key", "", "the client certificate's key `FILE` (PEM)")
	fs.StringVar(tokenFile, "token-file", "", "send the bearer token in `FILE` (its first line) to the query server")
	for _, name := range []string{"tls-ca", "tls-cert", "tls-key", "token-file"} {
		cmdline.Files(fs, name)
	}
}

// fieldFlags collects repeated --field KEY=VALUE flags.
type fieldFlags map[string]string

func (f fieldFlags) String() string { return "" }
func (f fieldFlags) Type() string   { return "KEY=VALUE" }

func (f fieldFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", v)
	}
	f[k] = val
	return nil
}

func parseTailFlags(args []string, stdout, stderr io.Writer) (*tailOptions, error) {
	f, fs := newTailFlags()
	if err := cmdline.Parse(fs, args); err != nil {
		return nil, flagError(err)
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	set := func(name string) bool { return fs.Changed(name) }
	o := &tailOptions{follow: f.follow, reverse: f.reverse, showCursor: f.showCursor, addr: f.addr, ring: f.ring, own: f.own}
	o.req.Filter.Tag, o.req.Filter.Grep = f.tag, f.grep
	o.req.Filter.Unit, o.req.Filter.Comm = f.units, f.comm
	switch {
	case set("ring") && set("addr"):
		return nil, usageError{errors.New("--ring and --addr: give one or the other")}
	case o.own && o.ring == "":
		return nil, usageError{errors.New("--own is for --ring: over a socket the daemon decides what you see")}
	case o.reverse && o.follow:
		return nil, usageError{errors.New("--reverse and --follow: newest first cannot follow")}
	}
	if o.addr == "" {
		o.addr = query.UnixPrefix + localSocket()
	}
	if err := o.parseAccess(set("addr"), f.useTLS, f.tlsCA, f.tlsCert, f.tlsKey, f.tokenFile, stderr); err != nil {
		return nil, err
	}
	var err error
	if o.out.format, err = parseOutput(f.output); err != nil {
		return nil, usageError{err}
	}
	o.req.N = new(int64(f.n))
	if f.after != "" {
		c, err := strconv.ParseUint(strings.TrimPrefix(f.after, "s="), 10, 64)
		if err != nil {
			return nil, usageError{fmt.Errorf("--after-cursor %q: not a cursor", f.after)}
		}
		o.req.After = &c
		if !set("lines") {
			o.req.N = nil // everything after the cursor
		}
	}
	now := time.Now()
	if o.req.Filter.Since, err = parseWhen(f.since, now); err != nil {
		return nil, usageError{fmt.Errorf("--since: %w", err)}
	}
	if o.req.Filter.Until, err = parseWhen(f.until, now); err != nil {
		return nil, usageError{fmt.Errorf("--until: %w", err)}
	}
	if o.req.Filter.Since != 0 && !set("lines") && o.req.After == nil {
		o.req.N = new(int64(query.NoMaxN)) // --since alone shows the whole range
	}
	if f.prio != "" {
		sev, err := record.ParseSeverity(f.prio)
		if err != nil {
			return nil, usageError{fmt.Errorf("-p: %w", err)}
		}
		o.req.Filter.Priority = new(int(sev))
	}
	for _, id := range []struct {
		flag string
		val  string
		dst  **uint32
	}{{"--pid", f.pid, &o.req.Filter.PID}, {"--uid", f.uid, &o.req.Filter.UID}} {
		if id.val == "" {
			continue
		}
		v, err := strconv.ParseUint(id.val, 10, 32)
		if err != nil {
			return nil, usageError{fmt.Errorf("%s %q: not a number", id.flag, id.val)}
		}
		*id.dst = new(uint32(v))
	}
	if len(f.fields) > 0 {
		o.req.Filter.Fields = f.fields
	}
	o.req.Filter.TraceID = strings.ToLower(f.traceID)
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
func (o *tailOptions) parseAccess(addrSet, useTLS bool, ca, cert, key, tokenFile string, stderr io.Writer) error {
	tlsSet := useTLS || ca != "" || cert != "" || key != ""
	if o.ring != "" && (tlsSet || tokenFile != "") {
		return usageError{errors.New("--ring reads the file directly: --tls, --tls-ca, --tls-cert, --tls-key and --token-file are for the query server")}
	}
	var err error
	o.tls, o.token, err = loadAccess(addrSet, o.addr, useTLS, ca, cert, key, tokenFile, stderr)
	return err
}

// loadAccess checks the --tls* and --token-file flags against the address
// and loads what they name: the TLS configuration (nil: plain) and the
// token ("" for none).
func loadAccess(addrSet bool, addr string, useTLS bool, ca, cert, key, tokenFile string, stderr io.Writer) (*tls.Config, string, error) {
	tlsSet := useTLS || ca != "" || cert != "" || key != ""
	if tlsSet && (!addrSet || strings.HasPrefix(addr, query.UnixPrefix)) {
		return nil, "", usageError{errors.New("--tls, --tls-ca, --tls-cert and --tls-key are for TCP: give --addr HOST:PORT")}
	}
	if (cert == "") != (key == "") {
		return nil, "", usageError{errors.New("--tls-cert and --tls-key: give both or neither")}
	}
	var cfg *tls.Config
	if tlsSet {
		var err error
		if cfg, err = access.ClientTLS(ca, cert, key, ""); err != nil {
			return nil, "", fmt.Errorf("--tls-ca/--tls-cert/--tls-key: %w", err)
		}
	}
	var tok string
	if tokenFile != "" {
		t, warn, err := access.ReadToken(tokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("--token-file: %w", err)
		}
		if warn != "" {
			fmt.Fprintln(stderr, "logctl: warning: "+warn)
		}
		tok = t
	}
	return cfg, tok, nil
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

func (c countFlag) Type() string { return "N" }

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

func tailCommand() cmdline.Command {
	_, fs := newTailFlags()
	return cmdline.Command{
		Name:     "tail",
		Synopsis: "[-n N|all] [-f] [-r] [filters] [-o FORMAT] [--addr unix:PATH | --addr HOST:PORT [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--token-file FILE] | --ring FILE [--own]]",
		Summary:  "print the latest records, or follow new ones",
		Description: `Prints the latest records (10 unless -n says otherwise), oldest first, and with -f keeps printing new ones as they arrive, like tail -f and journalctl -f. The filters (-p, -t, --pid, --uid, --field, --trace-id, -g, --since, --until) run on the server; each narrows the others.

By default tail asks the daemon's local socket, where root, the daemon's user and the readers' groups see every record and any other user only the records their own processes sent. --addr HOST:PORT asks a query server over TCP, which needs a client certificate or a token unless the daemon answers anonymous clients; --ring reads a ring file directly.

Output formats: short (syslog-like, the default), short-iso (with ISO 8601 times), json (one object a line), json-pretty (indented, one field a line), cat (the message alone; raw is the same).`,
		Flags: fs,
	}
}
