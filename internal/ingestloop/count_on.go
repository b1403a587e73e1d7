//go:build linux && !noinstrument

package ingestloop

import "sync/atomic"

// counters are an Ingester's per-datagram counters, exported by Stats. The
// ingest goroutine adds to them; any goroutine may read them. Built with
// the noinstrument tag they compile to nothing (count_off.go).
type counters struct {
	datagrams [NumFormats]atomic.Uint64
	bytes     [NumFormats]atomic.Uint64
	reasons   map[string]*atomic.Uint64
	batches   atomic.Uint64
}

func (c *counters) init() {
	c.reasons = make(map[string]*atomic.Uint64, len(Reasons))
	for _, r := range Reasons {
		c.reasons[r] = new(atomic.Uint64)
	}
}

// countN adds n to the counter of reason, one of Reasons.
func (c *counters) countN(reason string, n uint64) { c.reasons[reason].Add(n) }

// stored counts one stored datagram of format f (< NumFormats) and size n.
func (c *counters) stored(f, n int) {
	c.datagrams[f].Add(1)
	c.bytes[f].Add(uint64(n))
}

func (c *counters) batch() { c.batches.Add(1) }

func (c *counters) stats() Stats {
	s := Stats{Reasons: make(map[string]uint64, len(c.reasons)), Batches: c.batches.Load()}
	for i := range c.datagrams {
		s.Datagrams[i] = c.datagrams[i].Load()
		s.Bytes[i] = c.bytes[i].Load()
	}
	for r, n := range c.reasons {
		s.Reasons[r] = n.Load()
	}
	return s
}
