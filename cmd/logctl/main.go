// Command logctl talks to collectord: it sends log records and reads them.
//
//	logctl send [-p PRIORITY] [-t TAG] [--socket PATH] [MESSAGE...]
//	logctl stats [--metrics-addr HOST:PORT] [--interval D]
//	logctl tail [-n N|all] [-f] [filters] [-o short|short-iso|json|raw]
//	            [--addr unix:PATH | --addr HOST:PORT | --ring PATH [--own]]
//	            [--tls] [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--token-file FILE]
//
// tail asks the daemon's local socket unless --addr or --ring says
// otherwise: there a user outside the readers' groups sees only the
// records their own processes sent.
//
// Run "logctl COMMAND -h" for a command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command is one logctl subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"send", "send log records to collectord's socket", runSend},
		{"tail", "print the latest records, or follow new ones", runTail},
		{"stats", "summarise the daemon's state: rates, ring, anomalies, clients", runStats},
	}
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ error }

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// interruptible returns a context that SIGINT and SIGTERM cancel, for
// commands that run until stopped. One-shot commands do without: the signal
// handler starts a thread, which would cost every `logctl tail -n 100`
// noticeably; a signal simply ends them.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprintln(stderr, "usage: logctl COMMAND [flags]\n\ncommands:")
		for _, c := range commands() {
			fmt.Fprintf(stderr, "  %-8s %s\n", c.name, c.summary)
		}
	}
	if len(args) == 0 {
		usage()
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
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "logctl %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "logctl %s: %v\n", c.name, err)
			return 1
		}
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage()
		return 0
	}
	fmt.Fprintf(stderr, "logctl: unknown command %q\n", args[0])
	usage()
	return 2
}
