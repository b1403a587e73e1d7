package main

import (
	"strings"

	"github.com/collectord/collectord/internal/cmdline"
)

// command is collectord's command line, for --help and the man page.
func command() cmdline.Command {
	c := Defaults()
	var configPath string
	fs := newFlagSet(&c, &configPath)
	// Defaults that depend on who runs it, as root has them.
	fs.Lookup("socket").DefValue = "/run/collector.sock as root, else under $XDG_RUNTIME_DIR"
	fs.Lookup("query-socket").DefValue = "/run/collectord/query.sock as root, else under $XDG_RUNTIME_DIR"
	return cmdline.Command{
		Name:     "collectord",
		Synopsis: "[--config FILE] [--socket PATH] [--ring PATH] [--storage volatile|persistent|auto] [--ring-size SIZE] [--query-addr HOST:PORT] [--query-socket PATH] [--metrics-addr HOST:PORT] [--log-level LEVEL] [--pid-file PATH]",
		Summary:  "the per-host log collector daemon",
		Description: `collectord receives log datagrams on a UNIX socket (RFC 3164 and RFC 5424 syslog, JSON, or plain text, with the sender's pid, uid and gid from the kernel) and appends them to a memory-mapped ring file, which logctl(1) reads directly or through collectord's query server: a local socket, where the kernel says who asks, and optionally TCP with TLS and tokens. It exports Prometheus metrics, and with a [kafka] table forwards the records to Kafka.

The configuration is the defaults, then the file named by --config, then the flags: a flag overrides the key of the same name (query_addr for --query-addr). An unknown key, a bad value or a bad flag stops collectord at start with exit status 2 and a message naming the key or flag and the accepted range.

collectord logs JSON lines to standard error and stops cleanly on SIGTERM or SIGINT. On SIGHUP it re-executes its binary, which re-reads the configuration, and hands the sockets and the ring to the new process without losing a datagram. Under systemd it takes its sockets by their FileDescriptorName= (ingest, query-local, query, metrics) and notifies readiness and the watchdog.`,
		Flags: fs,
	}
}

// manPage is collectord.8. config is the annotated example configuration
// (configs/collectord.toml), shown whole under CONFIGURATION.
func manPage(config string) cmdline.Page {
	var lit strings.Builder
	for _, l := range strings.Split(strings.TrimRight(config, "\n"), "\n") {
		lit.WriteString("\t" + l + "\n")
	}
	return cmdline.Page{
		Name: "collectord", Section: 8, Manual: "collectord manual",
		Title: "the per-host log collector daemon",
		Main:  command(),
		Sections: []cmdline.Section{
			{Title: "Configuration", Body: "The file is TOML; every key is optional. The example configuration installed as /etc/collectord/collectord.toml, with every key, its default and its range:\n\n" + lit.String()},
			{Title: "Files", Body: `/etc/collectord/collectord.toml: the configuration, as the systemd unit names it with --config.

/run/collector.sock: the datagram socket applications log to (socket).

/var/lib/collectord/ring, or /run/collectord/ring with storage = "volatile": the ring (ring, storage).

/run/collectord/query.sock: the local query socket logctl asks (query_socket).`},
			{Title: "Exit status", Body: "0 after a clean stop or a completed upgrade; 1 when serving failed; 2 for a bad flag or configuration."},
			{Title: "See also", Body: "logctl(1), systemd.socket(5); docs/PROTOCOL.md and docs/SECURITY.md in the sources."},
		},
	}
}
