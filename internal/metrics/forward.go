package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/collectord/collectord/internal/forward"
)

// ForwardStats is what the Kafka forwarder's supervisor reports.
type ForwardStats struct {
	forward.Stats
	Running  bool   // a forwarder process runs
	Restarts uint64 // times one was started again after it exited
}

var (
	descForwardUp = prometheus.NewDesc("collectord_forward_up",
		"1 while the Kafka forwarder process runs.", nil, nil)
	descForwardRestarts = prometheus.NewDesc("collectord_forward_restarts_total",
		"Times the forwarder process was started again after it exited.", nil, nil)
	descForwardRecords = prometheus.NewDesc("collectord_forward_records_total",
		"Records the Kafka brokers acknowledged.", nil, nil)
	descForwardBytes = prometheus.NewDesc("collectord_forward_bytes_total",
		"Bytes of the values of the records the brokers acknowledged (before compression).", nil, nil)
	descForwardErrors = prometheus.NewDesc("collectord_forward_errors_total",
		"Forwarding errors by kind: connect, request, produce (the record is sent again), too_large and decode (the record is dropped), stall, probe.", []string{"kind"}, nil)
	descForwardLost = prometheus.NewDesc("collectord_forward_lost_records_total",
		"Records the ring overwrote before the brokers acknowledged them.", nil, nil)
	descForwardDropped = prometheus.NewDesc("collectord_forward_dropped_records_total",
		"Records not forwarded because the brokers refuse them for good (too large) or they did not decode.", nil, nil)
	descForwardAcked = prometheus.NewDesc("collectord_forward_acked_sequence",
		"Every record up to this sequence number is acknowledged (or lost).", nil, nil)
	descForwardLagRecords = prometheus.NewDesc("collectord_forward_lag_records",
		"Records in the ring not yet acknowledged by Kafka.", nil, nil)
	descForwardLagSeconds = prometheus.NewDesc("collectord_forward_lag_seconds",
		"Age of the oldest record not yet acknowledged by Kafka; 0 when caught up.", nil, nil)
	descForwardPending = prometheus.NewDesc("collectord_forward_pending_records",
		"Records handed to the Kafka client and not yet acknowledged.", nil, nil)
	descForwardBreaker = prometheus.NewDesc("collectord_forward_breaker_state",
		"The forwarder's circuit breaker: 1 for the state it is in (closed, open, half_open), 0 for the others.", []string{"state"}, nil)
	descForwardLatency = prometheus.NewDesc("collectord_forward_request_duration_seconds",
		"Round trip of produce requests (a batch of records each) to the brokers.", nil, nil)
)

func collectForward(ch chan<- prometheus.Metric, s ForwardStats) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	up := 0.0
	if s.Running {
		up = 1
	}
	gauge(descForwardUp, up)
	counter(descForwardRestarts, float64(s.Restarts))
	counter(descForwardRecords, float64(s.Records))
	counter(descForwardBytes, float64(s.Bytes))
	for _, k := range forward.ErrorKinds {
		counter(descForwardErrors, float64(s.Errors[k]), k)
	}
	counter(descForwardLost, float64(s.Lost))
	counter(descForwardDropped, float64(s.Dropped))
	gauge(descForwardAcked, float64(s.Acked))
	gauge(descForwardLagRecords, float64(s.LagRecords))
	gauge(descForwardLagSeconds, s.LagSeconds)
	gauge(descForwardPending, float64(s.Pending))
	for _, st := range forward.BreakerStates {
		v := 0.0
		if st == s.Breaker {
			v = 1
		}
		gauge(descForwardBreaker, v, st.String())
	}
	buckets := make(map[float64]uint64, len(forward.LatencyBuckets))
	for i, ub := range forward.LatencyBuckets {
		buckets[ub] = s.Latency.Counts[i]
	}
	ch <- prometheus.MustNewConstHistogram(descForwardLatency, s.Latency.Count, s.Latency.Sum, buckets)
}
