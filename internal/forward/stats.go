package forward

import (
	"sync/atomic"

	"github.com/collectord/collectord/pkg/histogram"
)

// Kinds of error the forwarder counts.
const (
	ErrConnect  = "connect"   // a broker could not be dialled (or TLS/SASL failed)
	ErrRequest  = "request"   // a request to a broker failed on the wire
	ErrProduce  = "produce"   // the client failed a record (it is sent again)
	ErrTooLarge = "too_large" // the brokers refuse the record for good: dropped
	ErrStall    = "stall"     // records waited StallTimeout without an acknowledgement
	ErrProbe    = "probe"     // the half-open breaker's probe failed
	ErrDecode   = "decode"    // a ring record did not decode: dropped
)

// ErrorKinds lists every kind, for exporting all counters from the start.
var ErrorKinds = []string{ErrConnect, ErrRequest, ErrProduce, ErrTooLarge, ErrStall, ErrProbe, ErrDecode}

// LatencyBuckets are the upper bounds, in seconds, of the produce request
// latency histogram.
var LatencyBuckets = [...]float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Latency is a histogram of produce request round trips: Counts[i]
// requests took at most LatencyBuckets[i] seconds (cumulative).
type Latency struct {
	Counts [len(LatencyBuckets)]uint64 `json:"counts"`
	Count  uint64                      `json:"count"`
	Sum    float64                     `json:"sum"` // seconds
}

// Stats is a snapshot of a forwarder: counters since it started, and its
// state now. It travels from the forwarder process to the daemon as JSON.
type Stats struct {
	Records uint64            `json:"records"` // acknowledged by the brokers
	Bytes   uint64            `json:"bytes"`   // their values' bytes
	Errors  map[string]uint64 `json:"errors"`  // by kind (Err*)
	// Lost counts records the ring overwrote before they were acknowledged;
	// Dropped those the brokers refused for good or that did not decode.
	Lost    uint64 `json:"lost"`
	Dropped uint64 `json:"dropped"`

	Acked      uint64       `json:"acked"`       // every record up to this seq is done
	LagRecords uint64       `json:"lag_records"` // records in the ring after Acked
	LagSeconds float64      `json:"lag_seconds"` // age of the oldest record not done; 0 when caught up
	Pending    int          `json:"pending"`     // records handed to the client, not acknowledged
	Breaker    BreakerState `json:"breaker"`
	Latency    Latency      `json:"latency"`
}

// counters are the forwarder's live statistics, updated from the
// producing goroutine, the client's promise goroutine and its hooks.
type counters struct {
	records, bytes, lost, dropped atomic.Uint64
	errors                        map[string]*atomic.Uint64
	breaker                       atomic.Int32
	latency                       *histogram.Histogram
}

func newCounters() *counters {
	c := &counters{errors: make(map[string]*atomic.Uint64, len(ErrorKinds)), latency: histogram.New(LatencyBuckets[:])}
	for _, k := range ErrorKinds {
		c.errors[k] = new(atomic.Uint64)
	}
	return c
}

func (c *counters) error(kind string) { c.errors[kind].Add(1) }

// snapshot returns the counters; the caller fills in the position.
func (c *counters) snapshot() Stats {
	s := Stats{
		Records: c.records.Load(),
		Bytes:   c.bytes.Load(),
		Errors:  make(map[string]uint64, len(c.errors)),
		Lost:    c.lost.Load(),
		Dropped: c.dropped.Load(),
		Breaker: BreakerState(c.breaker.Load()),
	}
	s.Latency.Count, s.Latency.Sum = c.latency.Snapshot(s.Latency.Counts[:])
	for k, v := range c.errors {
		s.Errors[k] = v.Load()
	}
	return s
}
