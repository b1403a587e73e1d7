package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
)

// promQuery returns the value of a scalar-valued instant query, or false
// when the result is empty.
func promQuery(t *testing.T, promAddr, q string) (float64, bool) {
	t.Helper()
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, false // not up yet
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" || len(r.Data.Result) == 0 {
		return 0, false
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil
}

// TestPrometheusScrape has a real Prometheus server scrape collectord and
// checks through its HTTP API that collectord_ingest_datagrams_total rose
// by exactly the number of datagrams sent.
func TestPrometheusScrape(t *testing.T) {
	prom := proctest.NeedTool(t, "prometheus")
	dir := t.TempDir()
	metricsAddr, promAddr := proctest.FreePort(t), proctest.FreePort(t)
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{MetricsAddr: metricsAddr})

	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: collectord\n    static_configs:\n      - targets: [%q]\n", metricsAddr)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, prom, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()

	const query = `sum(collectord_ingest_datagrams_total{job="collectord"})`
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(200 * time.Millisecond) // polling an external server's API
		}
	}
	var before float64
	waitFor("a first scrape", func() bool {
		v, ok := promQuery(t, promAddr, query)
		before = v
		return ok
	})
	const n = 37
	conn, err := net.Dial("unixgram", d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		fmt.Fprintf(conn, "<13>prom-test: message %d", i)
	}
	conn.Close()
	var after float64
	waitFor("the scrape to see the datagrams", func() bool {
		after, _ = promQuery(t, promAddr, query)
		return after >= before+n
	})
	if after != before+n {
		t.Fatalf("collectord_ingest_datagrams_total went from %v to %v, want +%d", before, after, n)
	}
	if up, ok := promQuery(t, promAddr, `up{job="collectord"}`); !ok || up != 1 {
		t.Fatalf("up = %v, %v", up, ok)
	}
	d.Stop(t)
}
