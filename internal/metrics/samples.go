package metrics

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/collectord/collectord/pkg/query"
)

// ownFigures are the figures a local user outside the readers' groups
// (query.OwnRecords) is given in a stats reply: what the hello tells
// them anyway (the ring's head and oldest sequence numbers, so its record
// count), the ring's capacity, and which collectord runs since when.
// Nothing that counts records by format, anomaly, sender or client, nor
// the bytes or times of other users' records, nor who else is connected.
var ownFigures = map[string]bool{
	"collectord_build_info":            true,
	"collectord_ring_capacity_bytes":   true,
	"collectord_ring_capacity_records": true,
	"collectord_ring_records":          true,
	"collectord_ring_head_sequence":    true,
	"collectord_ring_oldest_sequence":  true,
	"process_start_time_seconds":       true,
}

// Samples gathers reg, as a scrape of the metrics endpoint would, into the
// samples of a stats reply for a client with access a: every sample for
// AllRecords, only ownFigures for OwnRecords. A histogram or summary
// becomes its _count and _sum. A gathering error is logged and the
// samples gathered are returned.
func Samples(reg prometheus.Gatherer, a query.Access, log *slog.Logger) []query.Sample {
	mfs, err := reg.Gather()
	if err != nil && log != nil {
		log.Warn("gather metrics for a stats request", "err", err)
	}
	_, own := a.Own()
	var out []query.Sample
	for _, mf := range mfs {
		name := mf.GetName()
		if own && !ownFigures[name] {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels map[string]string
			if lp := m.GetLabel(); len(lp) > 0 {
				labels = make(map[string]string, len(lp))
				for _, l := range lp {
					labels[l.GetName()] = l.GetValue()
				}
			}
			add := func(suffix string, v float64) {
				out = append(out, query.Sample{Name: name + suffix, Labels: labels, Value: v})
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				add("", m.GetCounter().GetValue())
			case dto.MetricType_GAUGE:
				add("", m.GetGauge().GetValue())
			case dto.MetricType_HISTOGRAM:
				add("_count", float64(m.GetHistogram().GetSampleCount()))
				add("_sum", m.GetHistogram().GetSampleSum())
			case dto.MetricType_SUMMARY:
				add("_count", float64(m.GetSummary().GetSampleCount()))
				add("_sum", m.GetSummary().GetSampleSum())
			default:
				if u := m.GetUntyped(); u != nil {
					add("", u.GetValue())
				}
			}
		}
	}
	return out
}
