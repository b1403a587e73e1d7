package shmring

import (
	"sync"
	"sync/atomic"
)

// Local wakes readers in the writer's own process without system calls.
// Wait on a Reader sleeps in FUTEX_WAIT, a blocking system call: in a
// process that also holds the writer (the daemon's query server) every
// such sleep makes the Go runtime hand the sleeper's P to another thread
// and keeps its monitor thread waking every 20 µs, and every Publish wakes
// the sleeping thread. With a Local attached to both (Writer.SetLocal,
// Reader.SetLocal), Publish closes a channel the readers' Wait selects on
// instead, as long as the writer is attached; when it is detached (Close,
// Release, a handover to another process) they go back to the futex.
//
// A Local is safe for concurrent use.
type Local struct {
	waiting atomic.Bool // a Wait holds ch and may sleep on it
	mu      sync.Mutex
	ch      chan struct{} // closed by the next Publish a waiter asked for
	live    bool          // a writer is attached
}

// NewLocal returns a Local with no writer attached.
func NewLocal() *Local { return &Local{ch: make(chan struct{})} }

// wait returns the channel the next Publish closes, or nil when no writer
// is attached. The caller must check the ring's head after wait returns
// and before sleeping: a Publish that came between is seen either there or
// through the channel (both sides use sequentially consistent atomics).
func (l *Local) wait() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.live {
		return nil
	}
	l.waiting.Store(true)
	return l.ch
}

// published wakes the waiters, if any; the writer calls it after storing
// the new head. Without waiters it costs one atomic load.
func (l *Local) published() {
	if l.waiting.Load() {
		l.wake()
	}
}

// attach marks a writer attached (live) or detached, waking every waiter
// so that it looks again.
func (l *Local) attach(live bool) {
	l.mu.Lock()
	l.live = live
	l.mu.Unlock()
	l.wake()
}

// wake wakes every waiter.
func (l *Local) wake() {
	l.mu.Lock()
	l.waiting.Store(false)
	close(l.ch)
	l.ch = make(chan struct{})
	l.mu.Unlock()
}
