package metrics

import (
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/collectord/collectord/internal/ingestloop"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// UpgradeStats counts in-place upgrades started by this process and
// describes the handover this process took part in as the new one.
type UpgradeStats struct {
	Succeeded, Failed uint64
	// HandoffSeconds is the time no process read the datagram socket
	// during the upgrade that started this process; 0 if none.
	HandoffSeconds float64
}

// Sources are the functions a scrape reads. A nil function exports nothing
// for that part.
type Sources struct {
	Ingest func() ingestloop.Stats
	Ring   func() shmring.Stats
	// RingOldestTime is when the oldest record held was received.
	RingOldestTime func() (time.Time, bool)
	Query          func() query.ServerStats
	Upgrades       func() UpgradeStats
	// Forward is the Kafka forwarder's state; nil when forwarding is off.
	Forward func() ForwardStats
	// Durable is the syncing of a ring on a disk; nil for a volatile ring.
	Durable func() DurableStats
}

// DurableStats describe the syncing of a ring kept on a disk.
type DurableStats struct {
	shmring.SyncStats
	// Urgent counts, by ingestloop.UrgentBuckets, the time from the
	// arrival of a batch holding a record of priority crit or worse to
	// the ring being synced with it.
	Urgent struct {
		Counts []uint64 // cumulative, one per bucket
		Count  uint64
		Sum    float64 // seconds
	}
}

// NewRegistry returns a registry with collectord's metrics, build info and
// the Go and process collectors.
func NewRegistry(src Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo(),
		&collector{src: src},
	)
	return reg
}

// Handler serves /metrics from reg, /healthz (the process answers) and
// /readyz (ready() returns nil: ingesting).
func Handler(reg *prometheus.Registry, ready func() error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	return mux
}

func newBuildInfo() prometheus.Collector {
	version, revision := "(devel)", "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				revision = s.Value
			}
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "collectord_build_info",
		Help:        "Build information about the running collectord; always 1.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}

var (
	descDatagrams = prometheus.NewDesc("collectord_ingest_datagrams_total",
		"Datagrams stored in the ring, by detected format.", []string{"format"}, nil)
	descBytes = prometheus.NewDesc("collectord_ingest_bytes_total",
		"Bytes of the datagrams stored (memfd contents included), by detected format.", []string{"format"}, nil)
	descAnomalies = prometheus.NewDesc("collectord_ingest_anomalies_total",
		"Datagrams stored flagged (truncated, malformed, invalid_utf8, entry_too_large, no_credentials) or dropped (empty, rate_limited), and passed descriptors rejected, by reason.", []string{"reason"}, nil)
	descBatches = prometheus.NewDesc("collectord_ingest_batches_total",
		"Ring commits (one recvmmsg batch each).", nil, nil)

	descRingCapacityBytes = prometheus.NewDesc("collectord_ring_capacity_bytes",
		"Size of the ring's data area.", nil, nil)
	descRingCapacityRecords = prometheus.NewDesc("collectord_ring_capacity_records",
		"Most records the ring can hold at once.", nil, nil)
	descRingUsedBytes = prometheus.NewDesc("collectord_ring_used_bytes",
		"Data bytes held by live records.", nil, nil)
	descRingRecords = prometheus.NewDesc("collectord_ring_records",
		"Records held in the ring.", nil, nil)
	descRingHead = prometheus.NewDesc("collectord_ring_head_sequence",
		"Sequence number the next record will get.", nil, nil)
	descRingOldest = prometheus.NewDesc("collectord_ring_oldest_sequence",
		"Sequence number of the oldest record held.", nil, nil)
	descRingOldestTime = prometheus.NewDesc("collectord_ring_oldest_timestamp_seconds",
		"Receive time of the oldest record held: the ring's time span ends now.", nil, nil)
	descRingOverwritten = prometheus.NewDesc("collectord_ring_overwritten_records_total",
		"Records overwritten to make room since the ring was created.", nil, nil)
	descRingSyncs = prometheus.NewDesc("collectord_ring_syncs_total",
		"Syncs of a ring on a disk: every sync_interval, for records of priority crit or worse, and when stopping or handing over.", nil, nil)
	descRingSyncBytes = prometheus.NewDesc("collectord_ring_sync_bytes_total",
		"Bytes the syncs wrote: whole pages written since the sync before.", nil, nil)
	descRingSyncSeconds = prometheus.NewDesc("collectord_ring_sync_seconds_total",
		"Time spent syncing the ring.", nil, nil)
	descRingSyncErrors = prometheus.NewDesc("collectord_ring_sync_errors_total",
		"Syncs that failed: records since the last sync may not survive a power cut.", nil, nil)
	descRingUrgentDurable = prometheus.NewDesc("collectord_ring_urgent_durable_seconds",
		"Time from the arrival of a batch holding a record of priority crit, alert or emerg to the ring being synced with it.", nil, nil)

	descConnsOpen = prometheus.NewDesc("collectord_query_connections",
		"Query connections open, in their handshake or past it.", nil, nil)
	descConnsTotal = prometheus.NewDesc("collectord_query_connections_total",
		"Query connections accepted.", nil, nil)
	descConnsRejected = prometheus.NewDesc("collectord_query_connections_rejected_total",
		"Query connections refused with busy because the server was full.", nil, nil)
	descHandshakes = prometheus.NewDesc("collectord_query_handshakes",
		"Query connections in their handshake (TLS and hello) now.", nil, nil)
	descHandshakesDropped = prometheus.NewDesc("collectord_query_handshakes_dropped_total",
		"TCP query connections closed in their handshake to admit a newer one: the handshake budget was full.", nil, nil)
	descConnsRejectedUID = prometheus.NewDesc("collectord_query_uid_limit_rejected_total",
		"Local query connections refused because their user held the most connections one user may.", nil, nil)
	descAuthFailures = prometheus.NewDesc("collectord_query_auth_failures_total",
		"Query connections refused for their credentials: a failed TLS handshake (tls), a missing or wrong token (token), or a TCP client that proved nothing (anonymous).", []string{"reason"}, nil)
	descRequests = prometheus.NewDesc("collectord_query_requests_total",
		"Query requests by kind (latest, after, follow) and result.", []string{"kind", "result"}, nil)
	descDuration = prometheus.NewDesc("collectord_query_request_duration_seconds",
		"Time to answer latest and after queries (follows are not timed), by kind.", []string{"kind"}, nil)
	descFollowers = prometheus.NewDesc("collectord_query_followers",
		"Follow queries running.", nil, nil)
	descRecordsSent = prometheus.NewDesc("collectord_query_records_sent_total",
		"Records sent to query clients.", nil, nil)
	descRecordsLost = prometheus.NewDesc("collectord_query_records_lost_total",
		"Records overwritten before a query (mostly a slow follower) could read them.", nil, nil)

	descUpgrades = prometheus.NewDesc("collectord_upgrades_total",
		"In-place upgrades started by this process, by result.", []string{"result"}, nil)
	descHandoff = prometheus.NewDesc("collectord_upgrade_handoff_seconds",
		"Time no process read the datagram socket during the upgrade that started this process.", nil, nil)
)

// collector reads the sources at scrape time.
type collector struct{ src Sources }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if c.src.Ingest != nil {
		s := c.src.Ingest()
		for f := range ingestloop.NumFormats {
			name := record.Format(f).String()
			counter(descDatagrams, float64(s.Datagrams[f]), name)
			counter(descBytes, float64(s.Bytes[f]), name)
		}
		for _, r := range ingestloop.Reasons {
			counter(descAnomalies, float64(s.Reasons[r]), r)
		}
		counter(descBatches, float64(s.Batches))
	}
	if c.src.Ring != nil {
		s := c.src.Ring()
		gauge(descRingCapacityBytes, float64(s.Size))
		gauge(descRingCapacityRecords, float64(s.Records))
		gauge(descRingUsedBytes, float64(s.BytesUsed))
		gauge(descRingRecords, float64(s.Head-s.Oldest))
		gauge(descRingHead, float64(s.Head))
		gauge(descRingOldest, float64(s.Oldest))
		counter(descRingOverwritten, float64(s.Oldest-shmring.FirstSeq))
	}
	if c.src.RingOldestTime != nil {
		if t, ok := c.src.RingOldestTime(); ok {
			gauge(descRingOldestTime, float64(t.UnixNano())/1e9)
		}
	}
	if c.src.Query != nil {
		s := c.src.Query()
		gauge(descConnsOpen, float64(s.ConnsOpen))
		counter(descConnsTotal, float64(s.ConnsTotal))
		counter(descConnsRejected, float64(s.ConnsRejected))
		gauge(descHandshakes, float64(s.Handshakes))
		counter(descHandshakesDropped, float64(s.HandshakesDropped))
		counter(descConnsRejectedUID, float64(s.ConnsRejectedUID))
		counter(descAuthFailures, float64(s.AuthFailuresTLS), "tls")
		counter(descAuthFailures, float64(s.AuthFailuresToken), "token")
		counter(descAuthFailures, float64(s.AuthFailuresAnonymous), "anonymous")
		for i := range query.NumKinds {
			k := query.Kind(i)
			kind := k.String()
			rs := s.Requests[k]
			counter(descRequests, float64(rs.OK), kind, "ok")
			counter(descRequests, float64(rs.BadRequest), kind, "bad_request")
			counter(descRequests, float64(rs.Failed), kind, "failed")
			if k == query.KindFollow {
				continue // follows are not timed
			}
			d := s.Durations[k]
			buckets := make(map[float64]uint64, len(d.Counts))
			for i, ub := range query.DurationBuckets {
				buckets[ub] = d.Counts[i]
			}
			ch <- prometheus.MustNewConstHistogram(descDuration, d.Count, d.Sum, buckets, kind)
		}
		gauge(descFollowers, float64(s.FollowersActive))
		counter(descRecordsSent, float64(s.RecordsSent))
		counter(descRecordsLost, float64(s.RecordsLost))
	}
	if c.src.Forward != nil {
		collectForward(ch, c.src.Forward())
	}
	if c.src.Durable != nil {
		s := c.src.Durable()
		counter(descRingSyncs, float64(s.Syncs))
		counter(descRingSyncBytes, float64(s.Bytes))
		counter(descRingSyncSeconds, s.Time.Seconds())
		counter(descRingSyncErrors, float64(s.Errors))
		buckets := make(map[float64]uint64, len(s.Urgent.Counts))
		for i, ub := range ingestloop.UrgentBuckets[:len(s.Urgent.Counts)] {
			buckets[ub] = s.Urgent.Counts[i]
		}
		ch <- prometheus.MustNewConstHistogram(descRingUrgentDurable, s.Urgent.Count, s.Urgent.Sum, buckets)
	}
	if c.src.Upgrades != nil {
		s := c.src.Upgrades()
		counter(descUpgrades, float64(s.Succeeded), "succeeded")
		counter(descUpgrades, float64(s.Failed), "failed")
		gauge(descHandoff, s.HandoffSeconds)
	}
}
