// Command logctl talks to collectord: it sends log records and reads them.
//
//	logctl send [-p PRIORITY] [-t TAG] [--socket PATH] [MESSAGE...]
//	logctl tail [-n N|all] [-f] [-r] [filters] [-o FORMAT]
//	            [--addr unix:PATH | --addr HOST:PORT | --ring PATH [--own]]
//	            [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--token-file FILE]
//	logctl stats [--interval D] [--addr ...] [--tls...] [--token-file FILE]
//	logctl completion bash|zsh|fish
//
// Flags are GNU style (spf13/pflag, through internal/cmdline): bundled
// short flags (-fn 20), --flag=value, flags before or after arguments.
//
// tail and stats ask the daemon's local socket unless --addr (or, for
// tail, --ring) says otherwise: there a user outside the readers' groups
// sees only the records their own processes sent, and of stats only the
// ring's figures.
//
// Run "logctl COMMAND --help" for a command's flags; docs/man/logctl.1 is
// the manual, generated from the same definitions (go generate).
package main

//go:generate go test -run ^TestManPage$ . -update

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/pflag"

	"github.com/collectord/collectord/internal/cmdline"
	"github.com/collectord/collectord/pkg/query"
)

// command is one logctl subcommand: its name, its definition (flags,
// synopsis, summary), from which help, the man page and completions are
// made, and what runs it. name is cli().Name, known without building the
// definition: run builds only the one it needs, and only for help.
type command struct {
	name string
	cli  func() cmdline.Command
	run  func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"send", sendCommand, runSend},
		{"tail", tailCommand, runTail},
		{"stats", statsCommand, runStats},
		{"completion", completionCommand, runCompletion},
	}
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ error }

// flagError classifies an error from parsing flags: a request for help
// stays pflag.ErrHelp, anything else is a usageError.
func flagError(err error) error {
	if errors.Is(err, pflag.ErrHelp) {
		return err
	}
	return usageError{err}
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// interruptible returns a context that SIGINT and SIGTERM cancel, for
// commands that run until stopped. One-shot commands do without: the signal
// handler starts a thread, which would cost every `logctl tail -n 100`
// noticeably; a signal simply ends them.
//
// The command ends at its next step once ctx is cancelled, but a step may
// be a write to a pipe nobody reads (logctl tail -f | a stopped pager):
// then the process exits interruptGrace after the signal, with the
// shell's status for it (128 + the signal), and a second signal ends it
// at once. The returned stop must be called when the command returns.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sig:
			signal.Stop(sig) // the next one acts as if logctl did not catch it
			cancel()
			select {
			case <-done:
			case <-time.After(interruptGrace):
				os.Exit(128 + int(s.(syscall.Signal)))
			}
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(sig)
			close(done)
			cancel()
		})
	}
}

// dialHint adds to a failure to connect to a local socket, for lack of
// permission, where to look: the socket or its directory is not open to
// this user, and the daemon's log names which.
func dialHint(err error, addr string) error {
	if errors.Is(err, os.ErrPermission) && strings.HasPrefix(addr, query.UnixPrefix) {
		return fmt.Errorf("%w (this user may not reach the daemon's local socket or its directory; the daemon logs a warning when it is so)", err)
	}
	return err
}

// interruptGrace is how long an interrupted command has to return.
const interruptGrace = time.Second

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: logctl COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		d := c.cli()
		fmt.Fprintf(w, "  %-11s %s\n", d.Name, d.Summary)
	}
	fmt.Fprintln(w, "\nRun \"logctl COMMAND --help\" for a command's flags; \"man logctl\" for the manual.")
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdin, stdout, stderr)
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, pflag.ErrHelp):
			d := c.cli()
			d.WriteHelp(stdout, "logctl")
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "logctl %s: %v\n", c.name, err)
			fmt.Fprintf(stderr, "Try \"logctl %s --help\".\n", c.name)
			return 2
		default:
			fmt.Fprintf(stderr, "logctl %s: %v\n", c.name, err)
			return 1
		}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "logctl: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}
