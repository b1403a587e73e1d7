//go:build linux

package ingestloop

import (
	"math"
	"strconv"
	"time"

	"github.com/collectord/collectord/pkg/record"
)

// Rate limit defaults, used for zero RateLimit fields when Burst is set.
const (
	DefaultRateLimitInterval   = 30 * time.Second
	DefaultRateLimitMaxSenders = 4096
)

// RateLimit limits how many messages each sender may store. The zero value
// turns limiting off. journald's defaults, a reasonable choice, are a Burst
// of 10000 per 30s Interval.
type RateLimit struct {
	// Burst is the most messages a sender may store per Interval; the
	// rest are dropped and counted (ReasonRateLimited). Default 0: no limit.
	Burst int
	// Interval is the length of a sender's window. It starts with the
	// sender's first message and a new one starts with its first message
	// after it ends. Default DefaultRateLimitInterval (30s).
	Interval time.Duration
	// MaxSenders bounds the senders tracked at once, and so the memory
	// limiting takes (about 64 bytes each). Default
	// DefaultRateLimitMaxSenders (4096).
	MaxSenders int
}

func (r RateLimit) withDefaults() RateLimit {
	if r.Interval <= 0 {
		r.Interval = DefaultRateLimitInterval
	}
	if r.MaxSenders <= 0 {
		r.MaxSenders = DefaultRateLimitMaxSenders
	}
	return r
}

// senderKey identifies a sender by its kernel credentials. Datagrams
// without credentials share noCredsKey; senders beyond MaxSenders share
// overflowKey.
type senderKey struct{ uid, pid uint32 }

var (
	noCredsKey  = senderKey{uid: math.MaxUint32, pid: 0}
	overflowKey = senderKey{uid: math.MaxUint32, pid: math.MaxUint32}
)

type senderState struct {
	windowEnd int64  // Unix ns when the current window ends
	stored    int    // messages stored in the window
	dropped   uint64 // messages dropped in the window, not yet reported
}

// limiter is the per-sender rate limiter of one Ingester. It is owned by
// the ingest goroutine.
type limiter struct {
	burst    int
	interval int64
	max      int
	senders  map[senderKey]senderState
	// noteDue is the earliest window end among senders with drops to
	// report (math.MaxInt64 when none).
	noteDue int64
	// nextEvict is the earliest time a full table is swept again.
	nextEvict int64
}

func newLimiter(r RateLimit) *limiter {
	if r.Burst <= 0 {
		return nil
	}
	r = r.withDefaults()
	return &limiter{
		burst:    r.Burst,
		interval: int64(r.Interval),
		max:      r.MaxSenders,
		senders:  make(map[senderKey]senderState, r.MaxSenders+2),
		noteDue:  math.MaxInt64,
	}
}

// allow counts one message from key at now and reports whether it may be
// stored.
func (l *limiter) allow(key senderKey, now int64) bool {
	st, ok := l.senders[key]
	if !ok && len(l.senders) >= l.max {
		if now >= l.nextEvict {
			l.evict(now)
			l.nextEvict = now + max(l.interval/16, int64(time.Millisecond))
		}
		if len(l.senders) >= l.max {
			key = overflowKey
			st, ok = l.senders[key]
		}
	}
	if !ok || now >= st.windowEnd {
		// A new window. Drops from the last one are normally reported
		// (notes) before this message is counted; if not, they are
		// carried over and reported with this window's.
		st = senderState{windowEnd: now + l.interval, dropped: st.dropped}
		if st.dropped > 0 {
			l.noteDue = min(l.noteDue, st.windowEnd)
		}
	}
	ok = st.stored < l.burst
	if ok {
		st.stored++
	} else {
		if st.dropped == 0 {
			l.noteDue = min(l.noteDue, st.windowEnd)
		}
		st.dropped++
	}
	l.senders[key] = st
	return ok
}

// evict forgets senders whose window has ended and who have nothing to
// report.
func (l *limiter) evict(now int64) {
	for k, st := range l.senders {
		if now >= st.windowEnd && st.dropped == 0 {
			delete(l.senders, k)
		}
	}
}

// due returns when the next suppression note is due; ok is false when
// there is none to write.
func (l *limiter) due() (at int64, ok bool) { return l.noteDue, l.noteDue != math.MaxInt64 }

// notes calls report for every sender whose window has ended (every
// sender, if all) with drops not yet reported, and forgets those drops.
func (l *limiter) notes(now int64, all bool, report func(key senderKey, dropped uint64)) {
	if !all && now < l.noteDue {
		return
	}
	l.noteDue = math.MaxInt64
	for k, st := range l.senders {
		if st.dropped == 0 {
			continue
		}
		if all || now >= st.windowEnd {
			report(k, st.dropped)
			delete(l.senders, k)
			continue
		}
		l.noteDue = min(l.noteDue, st.windowEnd)
	}
}

// suppressionNote fills e with the record that reports dropped messages
// from key: "Suppressed N messages from pid P (uid U)", as the daemon's
// own syslog.warning record, with the numbers as fields. scratch holds
// the text; e aliases it.
func suppressionNote(e *record.Entry, scratch []byte, key senderKey, dropped uint64, self senderCreds) []byte {
	b := append(scratch[:0], "Suppressed "...)
	b = strconv.AppendUint(b, dropped, 10)
	switch key {
	case noCredsKey:
		b = append(b, " messages from senders without credentials"...)
	case overflowKey:
		b = append(b, " messages from senders beyond the rate limiter's sender table"...)
	default:
		b = append(b, " messages from pid "...)
		b = strconv.AppendUint(b, uint64(key.pid), 10)
		b = append(b, " (uid "...)
		b = strconv.AppendUint(b, uint64(key.uid), 10)
		b = append(b, ')')
	}
	msgEnd := len(b)
	b = strconv.AppendUint(b, dropped, 10)
	nEnd := len(b)
	b = strconv.AppendUint(b, uint64(key.pid), 10)
	pidEnd := len(b)
	b = strconv.AppendUint(b, uint64(key.uid), 10)

	e.Reset()
	e.Format = record.FormatRaw
	e.Flags = record.FlagCreds
	e.Priority = 5<<3 | 4 // syslog.warning
	e.PID, e.UID, e.GID = self.pid, self.uid, self.gid
	e.Tag = tagCollectord
	e.Message = b[:msgEnd]
	e.Fields = append(e.Fields,
		record.Field{Key: keySuppressed, Value: b[msgEnd:nEnd]},
		record.Field{Key: keySuppressedPID, Value: b[nEnd:pidEnd]},
		record.Field{Key: keySuppressedUID, Value: b[pidEnd:]})
	return b
}

var (
	tagCollectord    = []byte("collectord")
	keySuppressed    = []byte("SUPPRESSED")
	keySuppressedPID = []byte("SUPPRESSED_PID")
	keySuppressedUID = []byte("SUPPRESSED_UID")
)

// senderCreds are the daemon's own credentials, for the records it writes.
type senderCreds struct{ pid, uid, gid uint32 }
