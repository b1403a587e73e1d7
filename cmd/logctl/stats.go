package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/collectord/collectord/internal/cmdline"
	"github.com/collectord/collectord/pkg/query"
)

// statsFlags are the values of `logctl stats`'s flags.
type statsFlags struct {
	interval               time.Duration
	addr, metricsAddr      string
	useTLS                 bool
	tlsCA, tlsCert, tlsKey string
	tokenFile              string
}

func newStatsFlags() (*statsFlags, *cmdline.Command) {
	f := &statsFlags{}
	fs := cmdline.NewFlagSet("stats")
	fs.DurationVar(&f.interval, "interval", time.Second, "measure rates over this `DURATION`")
	fs.StringVar(&f.addr, "addr", "", "collectord's query server: `unix:PATH` (default: the local socket) or HOST:PORT (TCP)")
	addAccessFlags(fs, &f.useTLS, &f.tlsCA, &f.tlsCert, &f.tlsKey, &f.tokenFile)
	// Before stats asked the query server it read the metrics endpoint:
	// the flag is still accepted, and ignored with a warning.
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "ignored: stats asks the query server")
	fs.MarkHidden("metrics-addr")
	return f, &cmdline.Command{
		Name:     "stats",
		Synopsis: "[--interval DURATION] [--addr unix:PATH | --addr HOST:PORT [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--token-file FILE]]",
		Summary:  "summarise the daemon's state: rates, ring, anomalies, clients",
		Description: `Asks the query server for the daemon's figures twice, an interval apart, and prints rates and state: ingest by format, the ring, anomalies, query clients, the Kafka forwarder and upgrades. The figures are those the metrics endpoint exports, read over the query protocol: stats works with the metrics listener off, and obeys the query server's TLS, tokens and access rules.

A local user outside the readers' groups is shown only the ring's capacity and positions (which every query's hello tells them anyway) and the daemon's uptime: the other figures count every user's records and clients.`,
		Flags: fs,
	}
}

func statsCommand() cmdline.Command {
	_, c := newStatsFlags()
	return *c
}

// runStats prints a short human summary of the daemon's state, asked of
// the query server twice, an interval apart, for the rates.
func runStats(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	f, c := newStatsFlags()
	if err := cmdline.Parse(c.Flags, args); err != nil {
		return flagError(err)
	}
	if c.Flags.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", c.Flags.Arg(0))}
	}
	if f.interval <= 0 {
		return usageError{fmt.Errorf("--interval %v: must be positive", f.interval)}
	}
	if c.Flags.Changed("metrics-addr") {
		fmt.Fprintln(stderr, "logctl: warning: --metrics-addr is ignored: stats asks the query server (--addr)")
	}
	addr := f.addr
	if addr == "" {
		addr = query.UnixPrefix + localSocket()
	}
	tlsCfg, token, err := loadAccess(c.Flags.Changed("addr"), addr, f.useTLS, f.tlsCA, f.tlsCert, f.tlsKey, f.tokenFile, stderr)
	if err != nil {
		return err
	}
	cl, err := query.Dial(ctx, addr, query.DialOptions{Client: "logctl", TLSConfig: tlsCfg, Token: token})
	if err != nil {
		return dialHint(err, addr)
	}
	defer cl.Close()
	a, err := cl.Stats(ctx)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(f.interval):
	}
	b, err := cl.Stats(ctx)
	if err != nil {
		return err
	}
	writeStats(stdout, addr, &a, &b)
	return nil
}

// byLabel returns the values of a metric's samples keyed by one label.
func byLabel(r *query.StatsReply, name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, s := range r.Samples {
		if s.Name == name {
			out[s.Labels[label]] += s.Value
		}
	}
	return out
}

func one(r *query.StatsReply, name string, labels ...string) float64 {
	v, _ := r.Get(name, labels...)
	return v
}

func writeStats(w io.Writer, addr string, a, b *query.StatsReply) {
	secs := max(float64(b.Time-a.Time)/1e9, 1e-9)
	now := time.Unix(0, b.Time)
	rate := func(name string) float64 { return (b.Sum(name) - a.Sum(name)) / secs }
	fmt.Fprintf(w, "collectord at %s", addr)
	if start := one(b, "process_start_time_seconds"); start > 0 {
		up := now.Sub(time.Unix(int64(start), 0)).Round(time.Second)
		fmt.Fprintf(w, ", up %s", up)
	}
	fmt.Fprintln(w)
	if b.Access == query.AccessOwnName {
		fmt.Fprintf(w, "ring      %s, %.0f records (seq %.0f..%.0f)\n",
			humanBytes(one(b, "collectord_ring_capacity_bytes")), one(b, "collectord_ring_records"),
			one(b, "collectord_ring_oldest_sequence"), one(b, "collectord_ring_head_sequence")-1)
		fmt.Fprintln(w, "(only the ring's figures: the others count every user's records; they are for the daemon's readers' groups)")
		return
	}

	total := b.Sum("collectord_ingest_datagrams_total")
	fmt.Fprintf(w, "ingest    %.1f records/s, %s/s; %.0f stored since start\n",
		rate("collectord_ingest_datagrams_total"), humanBytes(rate("collectord_ingest_bytes_total")), total)
	if total > 0 {
		var parts []string
		for format, v := range byLabel(b, "collectord_ingest_datagrams_total", "format") {
			if v > 0 {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", format, 100*v/total))
			}
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "          by format: %s\n", strings.Join(parts, ", "))
	}

	size, used := one(b, "collectord_ring_capacity_bytes"), one(b, "collectord_ring_used_bytes")
	fmt.Fprintf(w, "ring      %s, %.0f%% full, %.0f records (seq %.0f..%.0f)",
		humanBytes(size), 100*used/max(size, 1), one(b, "collectord_ring_records"),
		one(b, "collectord_ring_oldest_sequence"), one(b, "collectord_ring_head_sequence")-1)
	if oldest := one(b, "collectord_ring_oldest_timestamp_seconds"); oldest > 0 {
		fmt.Fprintf(w, ", spanning %s", now.Sub(time.Unix(0, int64(oldest*1e9))).Round(time.Second))
	}
	if ow := rate("collectord_ring_overwritten_records_total"); ow > 0 {
		fmt.Fprintf(w, ", overwriting %.1f records/s", ow)
	}
	fmt.Fprintln(w)

	var drops []string
	for reason, v := range byLabel(b, "collectord_ingest_anomalies_total", "reason") {
		if v > 0 {
			drops = append(drops, fmt.Sprintf("%s %.0f", reason, v))
		}
	}
	sort.Strings(drops)
	if len(drops) == 0 {
		drops = []string{"none"}
	}
	fmt.Fprintf(w, "anomalies %s\n", strings.Join(drops, ", "))

	fmt.Fprintf(w, "clients   %.0f connections, %.0f following; %.0f records lost by followers\n",
		one(b, "collectord_query_connections"), one(b, "collectord_query_followers"), one(b, "collectord_query_records_lost_total"))
	if _, forwarding := b.Get("collectord_forward_up"); forwarding {
		writeForward(w, a, b, secs)
	}
	ok, failed := one(b, "collectord_upgrades_total", "result", "succeeded"), one(b, "collectord_upgrades_total", "result", "failed")
	if ok+failed > 0 || one(b, "collectord_upgrade_handoff_seconds") > 0 {
		fmt.Fprintf(w, "upgrades  %.0f succeeded, %.0f failed; this process took over in %.2f ms\n",
			ok, failed, 1000*one(b, "collectord_upgrade_handoff_seconds"))
	}
}

// writeForward describes the Kafka forwarder: its rate, lag and breaker.
func writeForward(w io.Writer, a, b *query.StatsReply, secs float64) {
	state := "down"
	if one(b, "collectord_forward_up") == 1 {
		state = "?"
		for st, v := range byLabel(b, "collectord_forward_breaker_state", "state") {
			if v == 1 {
				state = st
			}
		}
	}
	fmt.Fprintf(w, "kafka     %.1f records/s, %s/s; lag %.0f records, %.1f s; breaker %s\n",
		(b.Sum("collectord_forward_records_total")-a.Sum("collectord_forward_records_total"))/secs,
		humanBytes((b.Sum("collectord_forward_bytes_total")-a.Sum("collectord_forward_bytes_total"))/secs),
		one(b, "collectord_forward_lag_records"), one(b, "collectord_forward_lag_seconds"), state)
	lost, dropped := one(b, "collectord_forward_lost_records_total"), one(b, "collectord_forward_dropped_records_total")
	if lost+dropped > 0 {
		fmt.Fprintf(w, "          %.0f records lost to the ring before they were forwarded, %.0f refused by the brokers\n", lost, dropped)
	}
}

func humanBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", n, units[i])
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
