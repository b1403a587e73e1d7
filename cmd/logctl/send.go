package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/collectord/collectord/internal/cmdline"
	"github.com/collectord/collectord/internal/rundir"
	"github.com/collectord/collectord/pkg/record"
)

// runSend sends one record made of its arguments, or one per line of stdin,
// in the RFC 3164 form util-linux logger uses. The kernel adds the sender's
// pid, uid and gid; the text carries the tag and the pid only as claims.
func runSend(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	prio, tag, socket, fs := newSendFlags()
	if err := cmdline.Parse(fs, args); err != nil {
		return flagError(err)
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

// newSendFlags defines send's flags.
func newSendFlags() (prio, tag, socket *string, fs *pflag.FlagSet) {
	fs = cmdline.NewFlagSet("send")
	prio = fs.StringP("priority", "p", "user.notice", "`PRIORITY`: facility.level, level, or a number (e.g. local0.err, warning, 13)")
	tag = fs.StringP("tag", "t", defaultTag(), "`TAG` (program name) to send")
	socket = fs.String("socket", rundir.Socket(), "collectord's datagram socket `PATH`")
	cmdline.Files(fs, "socket")
	return prio, tag, socket, fs
}

func sendCommand() cmdline.Command {
	_, _, _, fs := newSendFlags()
	fs.Lookup("tag").DefValue = "$USER"
	fs.Lookup("socket").DefValue = "/run/collector.sock as root, else under $XDG_RUNTIME_DIR"
	return cmdline.Command{
		Name:        "send",
		Synopsis:    "[-p PRIORITY] [-t TAG] [--socket PATH] [MESSAGE...]",
		Summary:     "send log records to collectord's socket",
		Description: "Sends one record made of the MESSAGE arguments, or with none one record per line of standard input, in the RFC 3164 form util-linux logger uses. The kernel adds the sender's pid, uid and gid; the tag and the pid in the text are claims.",
		Flags:       fs,
	}
}

func defaultTag() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return filepath.Base(os.Args[0])
}
