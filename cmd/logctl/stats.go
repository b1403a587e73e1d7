package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/collectord/collectord/internal/rundir"
)

// runStats prints a short human summary of the daemon's state, read from
// its metrics endpoint twice, an interval apart, for the rates.
func runStats(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("metrics-addr", rundir.MetricsAddr, "collectord metrics server `host:port`")
	interval := fs.Duration("interval", time.Second, "measure rates over this `duration`")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usageError{err}
	}
	if *interval <= 0 {
		return usageError{fmt.Errorf("--interval %v: must be positive", *interval)}
	}
	a, err := scrapeMetrics(ctx, *addr)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(*interval):
	}
	b, err := scrapeMetrics(ctx, *addr)
	if err != nil {
		return err
	}
	writeStats(stdout, *addr, a, b, interval.Seconds(), time.Now())
	return nil
}

// samples maps a metric name to its series, each keyed by its labels as
// written in the exposition ("format=\"json\""), "" without labels.
type samples map[string]map[string]float64

// scrapeMetrics fetches the text exposition with a bare HTTP/1.0 request and
// parses it by hand: logctl stays free of net/http and the Prometheus
// client libraries, which would slow every logctl start by over a
// millisecond.
func scrapeMetrics(ctx context.Context, addr string) (samples, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w (is collectord running with metrics_addr set?)", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /metrics HTTP/1.0\r\nHost: %s\r\nAccept: text/plain\r\n\r\n", addr)
	r := bufio.NewReader(conn)
	status, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("read metrics from %s: %w", addr, err)
	}
	if f := strings.Fields(status); len(f) < 2 || f[1] != "200" {
		return nil, fmt.Errorf("read metrics from %s: %s", addr, strings.TrimSpace(status))
	}
	for { // headers
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("read metrics from %s: %w", addr, err)
		}
		if strings.TrimSpace(line) == "" {
			break
		}
	}
	out := samples{}
	lines := bufio.NewScanner(r)
	lines.Buffer(make([]byte, 64<<10), 1<<20)
	for lines.Scan() {
		line := lines.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		name, labels := line[:sp], ""
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name, labels = name[:i], strings.TrimSuffix(name[i+1:], "}")
		}
		if out[name] == nil {
			out[name] = map[string]float64{}
		}
		out[name][labels] = v
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("read metrics from %s: %w", addr, err)
	}
	return out, nil
}

// sum adds every series of a metric.
func (s samples) sum(name string) float64 {
	var t float64
	for _, v := range s[name] {
		t += v
	}
	return t
}

func (s samples) one(name string) float64 { return s[name][""] }

func writeStats(w io.Writer, addr string, a, b samples, secs float64, now time.Time) {
	rate := func(name string) float64 { return (b.sum(name) - a.sum(name)) / secs }
	fmt.Fprintf(w, "collectord at %s", addr)
	if start := b.one("process_start_time_seconds"); start > 0 {
		up := now.Sub(time.Unix(int64(start), 0)).Round(time.Second)
		fmt.Fprintf(w, ", up %s", up)
	}
	fmt.Fprintln(w)

	fmt.Fprintf(w, "ingest    %.1f records/s, %s/s; %.0f stored since start\n",
		rate("collectord_ingest_datagrams_total"), humanBytes(rate("collectord_ingest_bytes_total")), b.sum("collectord_ingest_datagrams_total"))
	if total := b.sum("collectord_ingest_datagrams_total"); total > 0 {
		var parts []string
		for labels, v := range b["collectord_ingest_datagrams_total"] {
			if v > 0 {
				parts = append(parts, fmt.Sprintf("%s %.0f%%", label(labels, "format"), 100*v/total))
			}
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "          by format: %s\n", strings.Join(parts, ", "))
	}

	size, used := b.one("collectord_ring_capacity_bytes"), b.one("collectord_ring_used_bytes")
	fmt.Fprintf(w, "ring      %s, %.0f%% full, %.0f records (seq %.0f..%.0f)",
		humanBytes(size), 100*used/max(size, 1), b.one("collectord_ring_records"),
		b.one("collectord_ring_oldest_sequence"), b.one("collectord_ring_head_sequence")-1)
	if oldest := b.one("collectord_ring_oldest_timestamp_seconds"); oldest > 0 {
		fmt.Fprintf(w, ", spanning %s", now.Sub(time.Unix(0, int64(oldest*1e9))).Round(time.Second))
	}
	if ow := rate("collectord_ring_overwritten_records_total"); ow > 0 {
		fmt.Fprintf(w, ", overwriting %.1f records/s", ow)
	}
	fmt.Fprintln(w)

	var drops []string
	for labels, v := range b["collectord_ingest_anomalies_total"] {
		if v > 0 {
			drops = append(drops, fmt.Sprintf("%s %.0f", label(labels, "reason"), v))
		}
	}
	sort.Strings(drops)
	if len(drops) == 0 {
		drops = []string{"none"}
	}
	fmt.Fprintf(w, "anomalies %s\n", strings.Join(drops, ", "))

	fmt.Fprintf(w, "clients   %.0f connections, %.0f following; %.0f records lost by followers\n",
		b.one("collectord_query_connections"), b.one("collectord_query_followers"), b.one("collectord_query_records_lost_total"))
	if _, forwarding := b["collectord_forward_up"]; forwarding {
		writeForward(w, a, b, secs)
	}
	up := b["collectord_upgrades_total"]
	ok, failed := up[`result="succeeded"`], up[`result="failed"`]
	if ok+failed > 0 || b.one("collectord_upgrade_handoff_seconds") > 0 {
		fmt.Fprintf(w, "upgrades  %.0f succeeded, %.0f failed; this process took over in %.2f ms\n",
			ok, failed, 1000*b.one("collectord_upgrade_handoff_seconds"))
	}
}

// writeForward describes the Kafka forwarder: its rate, lag and breaker.
func writeForward(w io.Writer, a, b samples, secs float64) {
	state := "down"
	if b.one("collectord_forward_up") == 1 {
		state = "?"
		for labels, v := range b["collectord_forward_breaker_state"] {
			if v == 1 {
				state = label(labels, "state")
			}
		}
	}
	fmt.Fprintf(w, "kafka     %.1f records/s, %s/s; lag %.0f records, %.1f s; breaker %s\n",
		(b.sum("collectord_forward_records_total")-a.sum("collectord_forward_records_total"))/secs,
		humanBytes((b.sum("collectord_forward_bytes_total")-a.sum("collectord_forward_bytes_total"))/secs),
		b.one("collectord_forward_lag_records"), b.one("collectord_forward_lag_seconds"), state)
	lost, dropped := b.one("collectord_forward_lost_records_total"), b.one("collectord_forward_dropped_records_total")
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

// label returns the value of a single-label key such as format="json".
func label(labels, name string) string {
	return strings.Trim(strings.TrimPrefix(labels, name+"="), `"`)
}
