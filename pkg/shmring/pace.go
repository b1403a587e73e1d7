//go:build linux

package shmring

import (
	"context"
	"time"
)

// Busy followers of one Reader wake together, at most once per PaceGap.
// A ring written in batches wakes Wait callers once per batch: under a high
// ingest rate tens of thousands of times a second. Each follower woken
// separately, sleeping in FUTEX_WAIT and on a timer of its own to space out
// its wake-ups, makes the scheduler wake threads (an interrupt to another
// CPU each) tens of thousands of times a second: sixteen follows of a user
// with no records of their own halved the daemon's ingest rate on 2 CPUs.
// Ticks shared by every follower of the reader cost one timer and one
// broadcast per PaceGap, however many follow, and while the ring is busy
// nobody sleeps on the futex at all.
const (
	// PaceGap is the shortest time between two of WaitPaced's ticks while
	// records arrive faster than every PaceBusy.
	PaceGap = time.Millisecond
	// PaceBusy is how long after a tick a new one waits for PaceGap: a
	// ring written less often than this wakes followers immediately.
	PaceBusy = 250 * time.Microsecond
	// paceBusyRecords is the rate, in records per PaceGap, above which
	// followers wait for the next tick instead of on the ring's futex:
	// at it, each tick finds records anyway.
	paceBusyRecords = 32
	// paceBusyFor is how long the ring stays busy after a tick that found
	// that rate: a writer descheduled for a few milliseconds (on a small
	// host, by its own senders) does not send followers back to the futex.
	paceBusyFor = 20 * PaceGap
)

// A Pace is one follower's place in its Reader's ticks, for WaitPaced. The
// zero Pace is ready to use; it belongs to one goroutine.
type Pace struct{ tick uint64 }

// paceState is a Reader's ticks, under Reader.mu.
type paceState struct {
	tick  uint64        // ticks so far
	at    time.Time     // when the last tick was
	head  uint64        // the ring's head then
	busy  time.Time     // until when the ring is busy (paceBusyRecords)
	ch    chan struct{} // closed at the next tick; nil until someone waits
	armed bool          // a timer will tick at at+PaceGap
}

// WaitPaced is Wait for a follower that reads everything published each
// time it wakes. It returns once a record with sequence number >= seq is
// published and the reader ticks, or at once if p has not run in the
// current tick yet. A tick happens as soon as a record is there when the
// last tick was more than PaceBusy ago, else PaceGap after the last: every
// follower of the reader wakes in the same tick, a ring written rarely is
// followed without delay (through the futex, as Wait), and a busy one
// wakes its followers at most once per PaceGap, from one timer.
//
// It returns nil when it is time to read, ctx.Err() when ctx is done, and
// ErrClosed when the reader is closed.
func (r *Reader) WaitPaced(ctx context.Context, seq uint64, p *Pace) error {
	r.mu.Lock()
	for {
		if r.closed {
			r.mu.Unlock()
			return ErrClosed
		}
		ps := &r.pace
		head := r.Head()
		if head > seq {
			if ps.tick > p.tick {
				// A tick this follower has not run in: it runs in it now.
				p.tick = ps.tick
				r.mu.Unlock()
				return nil
			}
			if now := time.Now(); now.Sub(ps.at) >= PaceBusy {
				r.tickLocked(now)
				p.tick = ps.tick
				r.mu.Unlock()
				return nil
			}
		} else if time.Now().After(ps.busy) {
			r.mu.Unlock()
			if err := r.Wait(ctx, seq); err != nil {
				return err
			}
			r.mu.Lock()
			continue
		}
		// Records are there but this follower has had its tick, or the
		// ring is busy: wait for the next tick.
		if ps.ch == nil {
			ps.ch = make(chan struct{})
		}
		if !ps.armed {
			ps.armed = true
			time.AfterFunc(time.Until(ps.at.Add(PaceGap)), r.timerTick)
		}
		ch := ps.ch
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
	}
}

// timerTick is the armed timer's tick.
func (r *Reader) timerTick() {
	r.mu.Lock()
	r.pace.armed = false
	if !r.closed { // Close has woken everyone
		r.tickLocked(time.Now())
	}
	r.mu.Unlock()
}

// tickLocked starts a new tick and wakes the followers waiting for it.
func (r *Reader) tickLocked(now time.Time) {
	ps := &r.pace
	head := r.Head()
	if el := now.Sub(ps.at); el > 0 && (head-ps.head)*uint64(PaceGap) >= paceBusyRecords*uint64(el) {
		ps.busy = now.Add(paceBusyFor)
	}
	ps.tick++
	ps.at, ps.head = now, head
	if ps.ch != nil {
		close(ps.ch)
		ps.ch = nil
	}
}
