//go:build linux && noinstrument

package ingestloop

// The noinstrument build tag exists only for bench/instrument, which
// measures what the counters cost by comparing the daemon's ingest rate
// with and without them. Under it an Ingester counts nothing: Stats
// returns zeros (every reason present), so the daemon's metrics and STATUS
// line show 0 stored. Never ship a binary built with it.

// counters is the no-op stand-in for count_on.go's.
type counters struct{}

func (*counters) init()                 {}
func (*counters) countN(string, uint64) {}
func (*counters) stored(int, int)       {}
func (*counters) batch()                {}

func (*counters) stats() Stats {
	s := Stats{Reasons: make(map[string]uint64, len(Reasons))}
	for _, r := range Reasons {
		s.Reasons[r] = 0
	}
	return s
}
