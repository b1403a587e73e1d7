package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
)

// TestStats reads the real daemon's metrics endpoint.
func TestStats(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := startDaemon(t, t.TempDir(), proctest.DaemonOptions{MetricsAddr: addr})
	d.Send(t, "one", "two", "three")
	res := logctl(t, "stats", "--metrics-addr", addr, "--interval", "50ms")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	for _, want := range []string{
		"collectord at " + addr + ", up ",
		"3 stored since start",
		"ring      1.0 MiB, ",
		"3 records (seq 1..3)",
		"anomalies none",
		"clients   ",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stats output lacks %q:\n%s", want, res.stdout)
		}
	}
	d.Stop(t)
	if res := logctl(t, "stats", "--metrics-addr", addr); res.code != 1 || !strings.Contains(res.stderr, "is collectord running") {
		t.Fatalf("stats with no daemon: exit %d, %q", res.code, res.stderr)
	}
}

// TestStatsFormatting checks rates, anomalies and upgrades from a
// hand-written exposition served twice.
func TestStatsFormatting(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		fmt.Fprintf(w, "# TYPE collectord_ingest_datagrams_total counter\ncollectord_ingest_datagrams_total{format=\"json\"} %d\n", 100*n)
		fmt.Fprintf(w, "collectord_ingest_datagrams_total{format=\"rfc3164\"} %d\n", 300*n)
		fmt.Fprint(w, "collectord_ingest_anomalies_total{reason=\"malformed\"} 4\ncollectord_ingest_anomalies_total{reason=\"empty\"} 0\n")
		fmt.Fprint(w, "collectord_upgrades_total{result=\"succeeded\"} 2\ncollectord_upgrades_total{result=\"failed\"} 1\ncollectord_upgrade_handoff_seconds 0.0012\n")
		fmt.Fprintf(w, "collectord_forward_up 1\ncollectord_forward_records_total %d\ncollectord_forward_bytes_total %d\n", 50*n, 51200*n)
		fmt.Fprint(w, "collectord_forward_lag_records 1234\ncollectord_forward_lag_seconds 7.25\ncollectord_forward_lost_records_total 9\n")
		fmt.Fprint(w, "collectord_forward_breaker_state{state=\"closed\"} 0\ncollectord_forward_breaker_state{state=\"open\"} 1\n")
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	a, err := scrapeMetrics(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := scrapeMetrics(t.Context(), addr)
	var out strings.Builder
	writeStats(&out, addr, a, b, 2, time.Now())
	for _, want := range []string{
		"ingest    200.0 records/s", "800 stored since start", "by format: json 25%, rfc3164 75%",
		"anomalies malformed 4", "upgrades  2 succeeded, 1 failed; this process took over in 1.20 ms",
		"kafka     25.0 records/s, 25.0 KiB/s; lag 1234 records, 7.2 s; breaker open",
		"9 records lost to the ring before they were forwarded, 0 refused by the brokers",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
