package forward

import "sync"

// tracker follows the records handed to the Kafka client until they are
// acknowledged, and knows the position a cursor may record: the last
// sequence number with every record up to it acknowledged, or skipped
// because the ring lost it. Records are handed over in sequence order;
// acknowledgements come in any order (partitions are independent).
//
// The producing goroutine calls sent and skipped; the client's promise
// goroutine calls acked; anyone may read. It is safe for concurrent use.
type tracker struct {
	mu sync.Mutex
	// pending holds the records sent and not yet acknowledged, plus
	// acknowledged ones still behind an unacknowledged one, in sequence
	// order, as a ring buffer of capacity len(buf).
	buf   []pendingRecord
	first int // index of the oldest entry
	n     int // entries held
	// next is the sequence number after the last one sent or skipped:
	// with nothing pending, everything before it is done.
	next uint64
}

type pendingRecord struct {
	seq  uint64
	time int64 // the record's receive time, for the lag in seconds
	done bool
}

func newTracker(next uint64) *tracker {
	return &tracker{buf: make([]pendingRecord, 64), next: next}
}

// sent records that seq, received at time, was handed to the client.
func (t *tracker) sent(seq uint64, time int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == len(t.buf) {
		nb := make([]pendingRecord, 2*len(t.buf))
		for i := range t.n {
			nb[i] = t.buf[(t.first+i)%len(t.buf)]
		}
		t.buf, t.first = nb, 0
	}
	t.buf[(t.first+t.n)%len(t.buf)] = pendingRecord{seq: seq, time: time}
	t.n++
	t.next = seq + 1
}

// skipped records that every record before next was lost or examined:
// with nothing pending, they count as done.
func (t *tracker) skipped(next uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next = max(t.next, next)
}

// acked marks seq acknowledged. It reports false when seq is not pending
// (a promise from a client that was reset).
func (t *tracker) acked(seq uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	// Binary search: pending sequence numbers increase.
	lo, hi := 0, t.n
	for lo < hi {
		mid := (lo + hi) / 2
		if t.buf[(t.first+mid)%len(t.buf)].seq < seq {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == t.n || t.buf[(t.first+lo)%len(t.buf)].seq != seq {
		return false
	}
	t.buf[(t.first+lo)%len(t.buf)].done = true
	for t.n > 0 && t.buf[t.first].done {
		t.first = (t.first + 1) % len(t.buf)
		t.n--
	}
	return true
}

// position returns the last sequence number with everything up to it
// done, and the receive time of the oldest record still pending (0 when
// none is).
func (t *tracker) position() (done uint64, oldestPending int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == 0 {
		return t.next - 1, 0
	}
	front := t.buf[t.first]
	return front.seq - 1, front.time
}

// pending returns how many records were sent and are not yet behind the
// acknowledged position.
func (t *tracker) pending() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// reset forgets everything pending and starts again at next: the client
// that held the pending records is gone, and they will be sent again. It
// returns, in increasing order, those the brokers had acknowledged behind
// one they had not: they need not be sent again.
func (t *tracker) reset(next uint64) (acked []uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range t.n {
		if r := t.buf[(t.first+i)%len(t.buf)]; r.done {
			acked = append(acked, r.seq)
		}
	}
	t.first, t.n, t.next = 0, 0, next
	return acked
}
