package main

import "github.com/collectord/collectord/internal/cmdline"

// manPage is logctl.1, made from the commands' definitions.
func manPage() cmdline.Page {
	p := cmdline.Page{
		Name: "logctl", Section: 1, Manual: "collectord manual",
		Title: "send records to collectord and read them",
		Main: cmdline.Command{
			Name: "logctl",
			Description: `logctl sends log records to collectord(8) and reads them: the latest ones, those matching filters, or new ones as they arrive. It reads through the daemon's query server (its local socket by default, or TCP with TLS and tokens) or a ring file directly.

Flags are GNU style: short flags bundle (-fn 20), long flags take their value after = or as the next argument, and flags may come before or after arguments; "--" ends them. The single-dash long spellings of earlier versions (-addr) are still accepted, and not shown.`,
		},
		Sections: []cmdline.Section{
			{Title: "Examples", Body: "\tlogctl tail -fn 20\n\tlogctl tail -n all -p err --since 1h -o json\n\tlogctl tail -rn 5 -o cat\n\tlogger hello; logctl send -t myapp -p local0.warning disk almost full\n\tlogctl stats --addr collector.example:6514 --tls-ca ca.pem --token-file token\n\tsource <(logctl completion bash)"},
			{Title: "Exit status", Body: "0 on success (and when a follow is interrupted); 1 when the command failed; 2 for a mistake on the command line."},
			{Title: "Environment", Body: "NO_COLOR turns off colours on a terminal. OTEL_EXPORTER_OTLP_ENDPOINT and the other OTEL_* variables export tail's spans."},
			{Title: "See also", Body: "collectord(8), journalctl(1), logger(1)."},
		},
	}
	for _, c := range commands() {
		p.Commands = append(p.Commands, c.cli())
	}
	return p
}
