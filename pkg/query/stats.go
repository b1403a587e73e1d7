//go:build linux

package query

import (
	"sync/atomic"

	"github.com/collectord/collectord/pkg/histogram"
)

// ServerStats is a snapshot of a Server's counters, for metrics.
type ServerStats struct {
	ConnsOpen     int64  // connections open, in their handshake or past it
	ConnsTotal    uint64 // connections accepted since NewServer
	ConnsRejected uint64 // hellos answered X busy: MaxConns were served

	// Fair shares (Options.MaxHandshakes, MaxConnsPerUID).
	Handshakes        int64  // connections in their handshake now (TLS and hello)
	HandshakesDropped uint64 // network connections closed in their handshake to admit a newer one
	ConnsRejectedUID  uint64 // UNIX socket connections refused busy (or closed) because their uid had MaxConnsPerUID

	// Requests counts the queries of each Kind, by how they ended.
	Requests [NumKinds]RequestStats

	// Durations are those of the queries of each Kind that ended with E,
	// from the start of the response to its last frame. Follows are not
	// timed: Durations[KindFollow] stays zero.
	Durations [NumKinds]DurationStats

	FollowersActive int64  // follows running now
	RecordsSent     uint64 // records sent in B frames
	RecordsLost     uint64 // records reported lost in L frames: queries (mostly follows) overtaken by the writer

	// Connections refused for want of credentials: a failed TLS
	// handshake (no, an expired or an untrusted client certificate, a
	// client that does not trust the server's, not TLS at all, or a
	// handshake not finished within HandshakeTimeout), a missing or
	// wrong token, or a network client that proved nothing while
	// AnonymousAll is off.
	AuthFailuresTLS, AuthFailuresToken, AuthFailuresAnonymous uint64
}

// RequestStats counts the queries of one kind by how they ended.
type RequestStats struct {
	OK         uint64 // ended with E (done, cancelled or shutdown)
	BadRequest uint64 // answered X bad_request
	Failed     uint64 // the connection or the ring failed mid-response
}

// DurationBuckets are the upper bounds, in seconds, of the request
// duration histogram in ServerStats.
var DurationBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// DurationStats is a histogram of request durations: Counts[i] requests took
// at most DurationBuckets[i] seconds (cumulative); Count and Sum cover all.
type DurationStats struct {
	Counts [len(DurationBuckets)]uint64
	Count  uint64
	Sum    float64 // seconds
}

// Stats returns the server's counters. It takes no lock and does not
// allocate; it is safe to call at any time from any goroutine.
func (s *Server) Stats() ServerStats {
	c := &s.stats
	st := ServerStats{
		ConnsOpen:     c.connsOpen.Load(),
		ConnsTotal:    c.connsTotal.Load(),
		ConnsRejected: c.connsRejected.Load(),

		Handshakes:        c.handshaking.Load(),
		HandshakesDropped: c.handshakesDropped.Load(),
		ConnsRejectedUID:  c.connsRejectedUID.Load(),

		FollowersActive: c.followers.Load(),
		RecordsSent:     c.sent.Load(),
		RecordsLost:     c.lost.Load(),

		AuthFailuresTLS:   c.authFailures[authTLS].Load(),
		AuthFailuresToken: c.authFailures[authToken].Load(),

		AuthFailuresAnonymous: c.authFailures[authAnonymous].Load(),
	}
	for k := range NumKinds {
		req := &c.requests[k]
		st.Requests[k] = RequestStats{
			OK:         req[outcomeOK].Load(),
			BadRequest: req[outcomeBadRequest].Load(),
			Failed:     req[outcomeFailed].Load(),
		}
		d := &st.Durations[k]
		d.Count, d.Sum = c.durations[k].Snapshot(d.Counts[:])
	}
	return st
}

// counters are the Server's live statistics: the connections' goroutines
// add to them and Stats reads them, all without a lock.
type counters struct {
	connsOpen         atomic.Int64
	connsTotal        atomic.Uint64
	connsRejected     atomic.Uint64
	handshaking       atomic.Int64
	handshakesDropped atomic.Uint64
	connsRejectedUID  atomic.Uint64
	requests          [NumKinds][numOutcomes]atomic.Uint64
	followers         atomic.Int64
	sent              atomic.Uint64
	lost              atomic.Uint64
	durations         [NumKinds]*histogram.Histogram
	authFailures      [3]atomic.Uint64 // by authTLS, authToken, authAnonymous
}

// outcome is how a query ended: which RequestStats field counts it.
type outcome int

const (
	outcomeOK outcome = iota
	outcomeBadRequest
	outcomeFailed
	numOutcomes
)

// Kinds of authentication failure.
const (
	authTLS = iota
	authToken
	authAnonymous
)
