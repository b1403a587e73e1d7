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
	"strings"
	"time"

	"github.com/collectord/collectord/internal/rundir"
	"github.com/collectord/collectord/pkg/record"
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
	pri, err := record.ParsePriority(*prio, 1)
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
