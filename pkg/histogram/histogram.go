package histogram

import (
	"sync/atomic"
	"time"
)

// Histogram counts durations into the buckets its bounds define. Create
// one with New; it is safe for concurrent use.
type Histogram struct {
	bounds  []float64       // upper bounds in seconds, increasing
	buckets []atomic.Uint64 // per bucket, not cumulative
	count   atomic.Uint64
	sumNs   atomic.Int64
}

// New returns a Histogram with the given upper bounds, in seconds, in
// increasing order. A duration above the last bound counts only in the
// total (Prometheus's +Inf bucket).
func New(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, buckets: make([]atomic.Uint64, len(bounds))}
}

// Observe counts one duration.
func (h *Histogram) Observe(d time.Duration) {
	sec := d.Seconds()
	for i, ub := range h.bounds {
		if sec <= ub {
			h.buckets[i].Add(1)
			break
		}
	}
	h.sumNs.Add(int64(d))
	h.count.Add(1)
}

// Snapshot writes into counts, which has one element per bound, how many
// durations were at most each bound (cumulative), and returns how many
// were observed in all and their sum in seconds.
func (h *Histogram) Snapshot(counts []uint64) (count uint64, sum float64) {
	var cum uint64
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		counts[i] = cum
	}
	return h.count.Load(), time.Duration(h.sumNs.Load()).Seconds()
}
