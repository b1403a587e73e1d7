package main

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/query"
)

// TestStatsMetricsOff asks a daemon whose metrics listener is off: stats
// goes over the query protocol, on the local socket by default.
func TestStatsMetricsOff(t *testing.T) {
	dir := openDir(t)
	d := startDaemon(t, dir, proctest.DaemonOptions{MetricsAddr: ""})
	defer d.Stop(t)
	if d.MetricsAddr != "" {
		t.Fatalf("metrics server on at %s", d.MetricsAddr)
	}
	d.Send(t, "one", "two", "three")
	for _, addr := range []string{query.UnixPrefix + d.QuerySocket, d.QueryAddr} {
		res := logctl(t, "stats", "--addr", addr, "--interval", "50ms")
		if res.code != 0 {
			t.Fatalf("stats --addr %s: exit %d: %s", addr, res.code, res.stderr)
		}
		for _, want := range []string{
			"collectord at " + addr + ", up ",
			"3 stored since start",
			"by format: raw 100%",
			"ring      1.0 MiB, ",
			"3 records (seq 1..3)",
			"anomalies none",
			"clients   1 connections, 0 following",
		} {
			if !strings.Contains(res.stdout, want) {
				t.Errorf("stats --addr %s: output lacks %q:\n%s", addr, want, res.stdout)
			}
		}
	}
	// The old flag is accepted, with a warning.
	res := logctl(t, "stats", "--addr", d.QueryAddr, "--interval", "1ms", "--metrics-addr", "127.0.0.1:1")
	if res.code != 0 || !strings.Contains(res.stderr, "--metrics-addr is ignored") {
		t.Errorf("stats --metrics-addr: exit %d, stderr %q", res.code, res.stderr)
	}
	d.Stop(t)
	if res := logctl(t, "stats", "--addr", d.QueryAddr); res.code != 1 || !strings.Contains(res.stderr, "connection refused") {
		t.Errorf("stats with no daemon: exit %d, %q", res.code, res.stderr)
	}
}

// TestStatsSameFiguresAsMetrics compares a stats reply, and what logctl
// stats prints from it, with a scrape of the same daemon's metrics
// endpoint: the same names, labels and values.
func TestStatsSameFiguresAsMetrics(t *testing.T) {
	dir := openDir(t)
	d := startDaemon(t, dir, proctest.DaemonOptions{MetricsAddr: "127.0.0.1:0"})
	defer d.Stop(t)
	d.Send(t, "one", `{"msg":"two"}`, "<13>Nov 24 22:31:11 app[7]: three")

	ctx, cancel := context.WithTimeout(context.Background(), e2eTimeout)
	defer cancel()
	c, err := query.Dial(ctx, query.UnixPrefix+d.QuerySocket, query.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	reply, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if reply.Access != query.AccessAllName || reply.Time == 0 {
		t.Errorf("reply access %q time %d", reply.Access, reply.Time)
	}
	scraped := scrape(t, d.MetricsAddr)
	// Figures that do not move between the two reads: the stats
	// connection and the scrape itself change the query and process ones.
	stable := regexp.MustCompile(`^collectord_(ingest|ring|upgrade|build)`)
	compared := 0
	for name, mf := range scraped {
		if !stable.MatchString(name) {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := []string{}
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName(), l.GetValue())
			}
			want := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			if mf.GetType() == dto.MetricType_HISTOGRAM {
				name, want = name+"_count", float64(m.GetHistogram().GetSampleCount())
			}
			got, ok := reply.Get(name, labels...)
			if !ok || got != want {
				t.Errorf("%s%v: stats reply %v (present %v), metrics endpoint %v", name, labels, got, ok, want)
			}
			compared++
		}
	}
	if compared < 20 {
		t.Fatalf("compared only %d figures", compared)
	}
	if v, ok := reply.Get("collectord_query_connections"); !ok || v != 1 {
		t.Errorf("collectord_query_connections = %v, %v; want 1 (this client)", v, ok)
	}

	// What logctl prints is what the endpoint says.
	res := logctl(t, "stats", "--addr", d.QueryAddr, "--interval", "10ms")
	if res.code != 0 {
		t.Fatalf("stats: exit %d: %s", res.code, res.stderr)
	}
	value := func(name string, labels ...string) string {
		for _, m := range scraped[name].GetMetric() {
			if len(labels) == 0 || m.GetLabel()[0].GetValue() == labels[0] {
				return strconv.FormatFloat(m.GetGauge().GetValue()+m.GetCounter().GetValue(), 'f', 0, 64)
			}
		}
		t.Fatalf("no %s %v in the scrape", name, labels)
		return ""
	}
	var stored float64
	for _, m := range scraped["collectord_ingest_datagrams_total"].GetMetric() {
		stored += m.GetCounter().GetValue()
	}
	head, _ := strconv.Atoi(value("collectord_ring_head_sequence"))
	for _, want := range []string{
		strconv.FormatFloat(stored, 'f', 0, 64) + " stored since start",
		value("collectord_ring_records") + " records (seq " + value("collectord_ring_oldest_sequence") + ".." + strconv.Itoa(head-1) + ")",
		"anomalies none",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stats output lacks %q (from the metrics endpoint):\n%s", want, res.stdout)
		}
	}
}

// scrape reads the metrics endpoint at addr.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	cl := http.Client{Timeout: e2eTimeout}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// TestStatsAccess: stats obeys the query server's rules. A local user
// outside the readers' groups sees only the ring's figures; a network
// client the daemon does not answer anonymously is refused.
func TestStatsAccess(t *testing.T) {
	if syscall.Geteuid() != 0 {
		t.Skip("running logctl as another user needs root")
	}
	dir := openDir(t)
	d := startDaemon(t, dir, proctest.DaemonOptions{Args: []string{"--query-anonymous", "none"}})
	defer d.Stop(t)
	d.Send(t, "root's secret", "another")

	other := &syscall.Credential{Uid: nobody, Gid: nobody}
	res := logctlAs(t, other, "stats", "--addr", query.UnixPrefix+d.QuerySocket, "--interval", "10ms")
	if res.code != 0 {
		t.Fatalf("stats as nobody: exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "2 records (seq 1..2)") || !strings.Contains(res.stdout, "only the ring's figures") {
		t.Errorf("stats as nobody: want the ring's figures and a note, got:\n%s", res.stdout)
	}
	for _, secret := range []string{"ingest", "stored", "anomalies", "clients", "format"} {
		if strings.Contains(res.stdout, secret) {
			t.Errorf("stats as nobody shows %q:\n%s", secret, res.stdout)
		}
	}
	res = logctl(t, "stats", "--addr", d.QueryAddr)
	if res.code != 1 || !strings.Contains(res.stderr, "anonymous") {
		t.Errorf("stats over TCP without credentials: exit %d, stderr %q; want refused", res.code, res.stderr)
	}
}
