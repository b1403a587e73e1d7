package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/collectord/collectord/internal/rundir"
)

// runSend sends one record made of its arguments, or one per line of stdin,
// in the RFC 3164 form util-linux logger uses. The kernel adds the sender's
// pid, uid and gid; the text carries the tag and the pid only as claims.
func runSend(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("send", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prio := fs.String("p", "user.notice", "`priority`: facility.level, level, or a number (e.g. local0.err, warning, 13)")
	tag := fs.String("t", defaultTag(), "`tag` (program name) to send")
	socket := fs.String("socket", rundir.Socket(), "collectord's datagram socket `path`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: logctl send [-p PRIORITY] [-t TAG] [--socket PATH] [MESSAGE...]\n\nWith no MESSAGE, sends one record per line of standard input.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	pri, err := ParsePriority(*prio, 1)
	if err != nil {
		return usageError{err}
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: *socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("connect to %s: %w (is collectord running?)", *socket, err)
	}
	defer conn.Close()
	send := func(msg string) error {
		line := fmt.Sprintf("<%d>%s %s[%d]: %s", pri, time.Now().Format(time.Stamp), *tag, os.Getpid(), msg)
		if _, err := conn.Write([]byte(line)); err != nil {
			return fmt.Errorf("send to %s: %w", *socket, err)
		}
		return nil
	}
	if fs.NArg() > 0 {
		return send(strings.Join(fs.Args(), " "))
	}
	ctx, stop := interruptible(ctx)
	defer stop()
	lines := bufio.NewScanner(stdin)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := send(lines.Text()); err != nil {
			return err
		}
	}
	return lines.Err()
}

func defaultTag() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return filepath.Base(os.Args[0])
}

var facilities = []string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

var severities = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// severityAliases are the other names syslog(3) and logger accept.
var severityAliases = map[string]int{"panic": 0, "error": 3, "warn": 4}

// ParsePriority parses "facility.level", "level" (with defaultFacility) or
// a number 0..191 into a syslog PRI value.
func ParsePriority(s string, defaultFacility int) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 191 {
			return 0, fmt.Errorf("priority %d: must be between 0 and 191", n)
		}
		return n, nil
	}
	fac, lvl := defaultFacility, s
	if f, l, ok := strings.Cut(s, "."); ok {
		lvl = l
		fac = -1
		for i, name := range facilities {
			if name == strings.ToLower(f) {
				fac = i
			}
		}
		if fac < 0 {
			return 0, fmt.Errorf("priority %q: unknown facility %q (kern, user, daemon, local0..local7, ...)", s, f)
		}
	}
	sev, err := ParseSeverity(lvl)
	if err != nil {
		return 0, fmt.Errorf("priority %q: %w", s, err)
	}
	return fac<<3 | sev, nil
}

// ParseSeverity parses a severity name (err, warning, ...) or digit 0..7.
func ParseSeverity(s string) (int, error) {
	s = strings.ToLower(s)
	if len(s) == 1 && s[0] >= '0' && s[0] <= '7' {
		return int(s[0] - '0'), nil
	}
	for i, name := range severities {
		if name == s {
			return i, nil
		}
	}
	if n, ok := severityAliases[s]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown level %q (emerg, alert, crit, err, warning, notice, info, debug or 0..7)", s)
}
