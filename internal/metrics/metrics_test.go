package metrics

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/forward"
	"github.com/collectord/collectord/internal/ingestloop"
	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

func testSources() Sources {
	return Sources{
		Ingest: func() ingestloop.Stats {
			s := ingestloop.Stats{Reasons: map[string]uint64{ingestloop.ReasonTruncated: 2}, Batches: 7}
			s.Datagrams[record.FormatRFC3164] = 40
			s.Bytes[record.FormatRFC3164] = 4000
			return s
		},
		Ring: func() shmring.Stats {
			return shmring.Stats{Size: 1 << 20, Records: 8192, Head: 101, Oldest: 11, BytesUsed: 5000}
		},
		Query: func() query.ServerStats {
			s := query.ServerStats{ConnsOpen: 2, ConnsTotal: 9, RecordsSent: 300, AuthFailuresTLS: 4, AuthFailuresToken: 6,
				AuthFailuresAnonymous: 8, Handshakes: 1, HandshakesDropped: 11, ConnsRejectedUID: 12}
			s.Requests[query.KindLatest].OK = 5
			d := &s.Durations[query.KindLatest]
			d.Count, d.Sum = 5, 0.01
			for i := range d.Counts {
				d.Counts[i] = 5
			}
			return s
		},
		Upgrades: func() UpgradeStats { return UpgradeStats{Succeeded: 3, HandoffSeconds: 0.0008} },
		Durable: func() DurableStats {
			var s DurableStats
			s.Syncs, s.Bytes, s.Time = 12, 65536, 30*time.Millisecond
			s.Urgent.Counts = make([]uint64, len(ingestloop.UrgentBuckets))
			for i := 3; i < len(s.Urgent.Counts); i++ {
				s.Urgent.Counts[i] = 4
			}
			s.Urgent.Count, s.Urgent.Sum = 4, 0.003
			return s
		},
		Forward: func() ForwardStats {
			s := ForwardStats{Running: true, Restarts: 1}
			s.Records, s.Bytes, s.Lost, s.Acked, s.LagRecords, s.LagSeconds = 70, 7000, 3, 80, 20, 1.5
			s.Errors = map[string]uint64{forward.ErrConnect: 4}
			s.Breaker = forward.BreakerOpen
			s.Latency.Count, s.Latency.Sum = 2, 0.004
			for i := range s.Latency.Counts {
				s.Latency.Counts[i] = 2
			}
			return s
		},
	}
}

func scrape(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestMetricsExposition(t *testing.T) {
	reg := NewRegistry(testSources())
	h := Handler(reg, func() error { return nil })
	code, body := scrape(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`collectord_ingest_datagrams_total{format="rfc3164"} 40`,
		`collectord_ingest_bytes_total{format="rfc3164"} 4000`,
		`collectord_ingest_anomalies_total{reason="truncated"} 2`,
		`collectord_ingest_batches_total 7`,
		`collectord_ring_capacity_bytes 1.048576e+06`,
		`collectord_ring_records 90`,
		`collectord_ring_head_sequence 101`,
		`collectord_ring_oldest_sequence 11`,
		`collectord_ring_overwritten_records_total 10`,
		`collectord_query_connections 2`,
		`collectord_query_auth_failures_total{reason="tls"} 4`,
		`collectord_query_auth_failures_total{reason="token"} 6`,
		`collectord_query_auth_failures_total{reason="anonymous"} 8`,
		`collectord_query_handshakes 1`,
		`collectord_query_handshakes_dropped_total 11`,
		`collectord_query_uid_limit_rejected_total 12`,
		`collectord_query_requests_total{kind="latest",result="ok"} 5`,
		`collectord_query_request_duration_seconds_count{kind="latest"} 5`,
		`collectord_query_records_sent_total 300`,
		`collectord_ring_syncs_total 12`,
		`collectord_ring_sync_bytes_total 65536`,
		`collectord_ring_sync_seconds_total 0.03`,
		`collectord_ring_sync_errors_total 0`,
		`collectord_ring_urgent_durable_seconds_bucket{le="0.0005"} 0`,
		`collectord_ring_urgent_durable_seconds_bucket{le="0.001"} 4`,
		`collectord_ring_urgent_durable_seconds_count 4`,
		`collectord_upgrades_total{result="succeeded"} 3`,
		`collectord_upgrade_handoff_seconds 0.0008`,
		`collectord_forward_up 1`,
		`collectord_forward_restarts_total 1`,
		`collectord_forward_records_total 70`,
		`collectord_forward_bytes_total 7000`,
		`collectord_forward_errors_total{kind="connect"} 4`,
		`collectord_forward_errors_total{kind="too_large"} 0`,
		`collectord_forward_lost_records_total 3`,
		`collectord_forward_acked_sequence 80`,
		`collectord_forward_lag_records 20`,
		`collectord_forward_lag_seconds 1.5`,
		`collectord_forward_breaker_state{state="open"} 1`,
		`collectord_forward_breaker_state{state="closed"} 0`,
		`collectord_forward_request_duration_seconds_count 2`,
		`collectord_build_info{`,
		`go_goroutines `,
		`process_open_fds `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	promtool := proctest.NeedTool(t, "promtool")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestHealth(t *testing.T) {
	ready := errors.New("ring not open")
	h := Handler(NewRegistry(Sources{}), func() error { return ready })
	if code, _ := scrape(t, h, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := scrape(t, h, "/readyz"); code != 503 || !strings.Contains(body, "ring not open") {
		t.Fatalf("/readyz not ready = %d %q", code, body)
	}
	ready = nil
	if code, _ := scrape(t, h, "/readyz"); code != 200 {
		t.Fatalf("/readyz ready = %d", code)
	}
}
