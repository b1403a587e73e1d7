package forward

import (
	"math/rand/v2"
	"time"
)

// BreakerState is the forwarder's circuit breaker state.
type BreakerState int32

// The breaker's states.
const (
	// BreakerClosed: producing normally.
	BreakerClosed BreakerState = iota
	// BreakerOpen: the cluster failed repeatedly; the client is closed and
	// nothing is sent until the backoff ends.
	BreakerOpen
	// BreakerHalfOpen: probing the cluster with a metadata request; on
	// success producing resumes, on failure the breaker opens again with
	// a longer backoff.
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

// BreakerStates lists every state, for exporting all of them.
var BreakerStates = []BreakerState{BreakerClosed, BreakerOpen, BreakerHalfOpen}

// breaker counts consecutive failures and decides how long to stay open.
// It belongs to the forwarder's producing goroutine.
type breaker struct {
	threshold  int           // consecutive failures that open it
	minBackoff time.Duration // first open period
	maxBackoff time.Duration // longest open period
	rand       func() float64

	failures int           // consecutive failures while closed
	backoff  time.Duration // the next open period (before jitter)
}

func newBreaker(threshold int, minBackoff, maxBackoff time.Duration) *breaker {
	return &breaker{threshold: threshold, minBackoff: minBackoff, maxBackoff: maxBackoff, rand: rand.Float64, backoff: minBackoff}
}

// failure counts one failure and reports whether the breaker should open.
func (b *breaker) failure() bool {
	b.failures++
	return b.failures >= b.threshold
}

// success resets the failures and the backoff.
func (b *breaker) success() {
	b.failures = 0
	b.backoff = b.minBackoff
}

// openFor returns how long to stay open this time, with jitter (between
// half and all of the backoff), and doubles the backoff for the next time.
func (b *breaker) openFor() time.Duration {
	d := b.backoff/2 + time.Duration(b.rand()*float64(b.backoff/2))
	b.backoff = min(2*b.backoff, b.maxBackoff)
	b.failures = 0
	return d
}
