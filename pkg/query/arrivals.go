package query

import (
	"context"
	"sync"
)

// MaxArrivalUIDs is how many users an Arrivals tracks. A follow of a user
// beyond them is woken as a follow of every record is (each tick of the
// ring).
const MaxArrivalUIDs = 65536

// Arrivals tells follows limited to one user's records (OwnRecords) when
// that user's records arrive, so that a follow of a user who sends nothing
// sleeps through everyone else's records instead of waking, with every
// other follow, to pass over them. Without it, sixteen such follows (one
// user at the per-user cap) cost a busy daemon's ingest a tenth of its
// rate on 2 CPUs.
//
// The process that writes the ring tells it what it publishes: Start when
// it begins writing, Published after each batch, Stop when it stops. Only
// records published between Start and Stop are seen: a follow falls back
// to the ring's ticks (shmring.Reader.WaitPaced) while no writer of this
// process runs, and for positions before the head at Start. The zero
// value is not usable; use NewArrivals. All methods are safe for
// concurrent use.
type Arrivals struct {
	mu   sync.Mutex
	live bool
	from uint64 // the ring's head at Start: records from it on are seen
	uids map[uint32]*arrival
}

// arrival is one user's: the ring's head after the last batch that held a
// record of theirs, and the channel closed when it moves (made by the
// first waiter).
type arrival struct {
	mark uint64
	ch   chan struct{}
}

// NewArrivals returns an Arrivals, stopped.
func NewArrivals() *Arrivals {
	return &Arrivals{uids: make(map[uint32]*arrival)}
}

// Start says that this process writes the ring from now on, its next
// record being head.
func (a *Arrivals) Start(head uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.live, a.from = true, head
}

// Stop says that this process no longer writes the ring. Follows waiting
// for a user's records wake and wait on the ring instead.
func (a *Arrivals) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.live = false
	for _, e := range a.uids {
		e.wake()
	}
}

// Published says that a batch holding records of each of uids (in any
// order, perhaps repeated) was published, the ring's head now being head.
func (a *Arrivals) Published(uids []uint32, head uint64) {
	if len(uids) == 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, uid := range uids {
		e := a.entryLocked(uid)
		if e == nil {
			continue
		}
		e.mark = max(e.mark, head)
		e.wake()
	}
}

// entryLocked returns uid's entry, made if there is room; nil if not.
func (a *Arrivals) entryLocked(uid uint32) *arrival {
	e := a.uids[uid]
	if e == nil && len(a.uids) < MaxArrivalUIDs {
		e = &arrival{}
		a.uids[uid] = e
	}
	return e
}

// wake wakes the waiters, if any.
func (e *arrival) wake() {
	if e.ch != nil {
		close(e.ch)
		e.ch = nil
	}
}

// wait blocks until a record of uid at position pos or later may have
// been published. It returns false at once when it cannot tell (no writer
// of this process runs, pos is before what it has seen, or uid is beyond
// MaxArrivalUIDs), and when the writer stops: the caller then waits on the
// ring. It returns ctx.Err() when ctx is done.
func (a *Arrivals) wait(ctx context.Context, uid uint32, pos uint64) (bool, error) {
	a.mu.Lock()
	for {
		if !a.live || pos < a.from {
			a.mu.Unlock()
			return false, nil
		}
		e := a.entryLocked(uid)
		if e == nil {
			a.mu.Unlock()
			return false, nil
		}
		if e.mark > pos {
			a.mu.Unlock()
			return true, nil
		}
		if e.ch == nil {
			e.ch = make(chan struct{})
		}
		ch := e.ch
		a.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		a.mu.Lock()
	}
}
