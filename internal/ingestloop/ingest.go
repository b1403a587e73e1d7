//go:build linux

package ingestloop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/collectord/collectord/internal/dgram"
	"github.com/collectord/collectord/internal/fault"
	"github.com/collectord/collectord/internal/origin"
	"github.com/collectord/collectord/pkg/histogram"
	"github.com/collectord/collectord/pkg/ingest"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// Options configure an Ingester. The zero value means defaults.
type Options struct {
	// BatchSize is the most datagrams read per recvmmsg(2) call; each batch
	// is published to the ring with one commit and one futex wake.
	// Default dgram.DefaultBatchSize.
	BatchSize int
	// MaxMessage is the longest datagram stored whole; longer ones are
	// stored truncated and flagged. Default dgram.DefaultMaxDatagram.
	MaxMessage int
	// Logger receives rare events (never one line per datagram). Default:
	// discard.
	Logger *slog.Logger
	// Now is the receive clock. Default time.Now. With a RateLimit it
	// must follow the wall clock: suppression notes are timed by socket
	// read deadlines.
	Now func() time.Time
	// RateLimit limits the messages stored per sender. Default: off.
	RateLimit RateLimit
	// SyncUrgent makes records of priority crit, alert and emerg durable
	// before the next datagram is read: Run syncs the ring
	// (shmring.Writer.Sync) after publishing a batch that holds one. For a
	// ring on a disk. Default false.
	SyncUrgent bool
	// Origin sizes the cache of the senders' trusted origin fields (comm,
	// exe, unit, cgroup; internal/origin). Default: origin's defaults.
	Origin origin.Options
	// Arrivals, if set, is told which senders' records each published
	// batch holds (query.Arrivals), so that follows of one user's records
	// sleep until theirs arrive. Default: nil.
	Arrivals Arrivals
}

// Arrivals is what Run tells about the records it publishes: Start with
// the ring's head when it begins, Published with the trusted uids of a
// batch's senders and the head after it, Stop when it ends.
type Arrivals interface {
	Start(head uint64)
	Published(uids []uint32, head uint64)
	Stop()
}

// UrgentSeverity is the least urgent severity that Options.SyncUrgent
// syncs at once: crit (2), and with it alert (1) and emerg (0), as
// journald does.
const UrgentSeverity = 2

// UrgentBuckets are the upper bounds, in seconds, of the histogram of the
// time from the arrival of a batch holding an urgent record to the ring
// being synced with it (Ingester.UrgentLatency).
var UrgentBuckets = [...]float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// Drop and damage reasons counted by an Ingester.
const (
	ReasonTruncated        = "truncated"         // datagram longer than MaxMessage, stored truncated
	ReasonMalformed        = "malformed"         // claimed a format it did not follow, stored flagged
	ReasonInvalidUTF8      = "invalid_utf8"      // message is not UTF-8, stored as sent
	ReasonEmpty            = "empty"             // empty datagram without a memfd: dropped
	ReasonRejectedFD       = "rejected_fd"       // passed fd that is not a sealed memfd: closed
	ReasonControlTruncated = "control_truncated" // too many fds: the kernel dropped some
	ReasonEntryTooLarge    = "entry_too_large"   // entry larger than a ring record: stored cut down
	ReasonNoCredentials    = "no_credentials"    // the kernel sent no SCM_CREDENTIALS
	ReasonRateLimited      = "rate_limited"      // the sender exceeded its rate limit: dropped
)

// Reasons lists every reason, for exporting all counters from the start.
var Reasons = []string{ReasonTruncated, ReasonMalformed, ReasonInvalidUTF8, ReasonEmpty,
	ReasonRejectedFD, ReasonControlTruncated, ReasonEntryTooLarge, ReasonNoCredentials, ReasonRateLimited}

// NumFormats bounds record.Format values: Stats arrays are indexed by them
// and labelled with record.Format.String.
const NumFormats = int(record.FormatJSON) + 1

// Stats is a snapshot of an Ingester's counters, all monotonic.
type Stats struct {
	Datagrams [NumFormats]uint64 // stored datagrams by record.Format
	Bytes     [NumFormats]uint64 // their received bytes (memfd contents included)
	Reasons   map[string]uint64  // by Reason*
	Batches   uint64             // ring commits
}

// Ingester reads datagrams from a UNIX datagram socket, parses each into a
// record.Entry stamped with the sender's kernel credentials and the receive
// time, and appends it to a ring. It is the ring's only writer while it runs.
type Ingester struct {
	conn *net.UnixConn
	rx   *dgram.Receiver
	w    *shmring.Writer
	log  *slog.Logger
	now  func() time.Time

	parser ingest.Parser
	entry  record.Entry
	buf    []byte
	recvAt time.Time // the current batch's receive time, the parser's clock

	origin *origin.Cache // senders' origin fields, by pid

	limit *limiter    // nil: no rate limit
	self  senderCreds // for the records the Ingester writes itself
	note  []byte      // scratch text of a suppression note

	arrivals Arrivals // Options.Arrivals
	uids     []uint32 // the current batch's senders, for arrivals
	last     uint64   // the sequence number of the last record added

	syncUrgent bool                 // Options.SyncUrgent
	urgent     bool                 // the batch being stored holds an urgent record
	urgentTime *histogram.Histogram // arrival to durable, of batches with urgent records

	counters // count_on.go; no-ops under the noinstrument tag (count_off.go)

	// Progress, written by Run and read by Health from any goroutine.
	running atomic.Bool  // Run is running
	waiting atomic.Bool  // Run is waiting for datagrams
	batchAt atomic.Int64 // when Run stopped waiting (monotonic ns since epoch)
	epoch   time.Time
}

// ErrNotRunning is Health's answer when Run is not running: it has not
// started, or it has returned (stopped, handed over, or failed).
var ErrNotRunning = errors.New("ingest loop not running")

// StallError is Health's answer when Run has spent too long on one batch.
type StallError struct {
	Stalled time.Duration // how long Run has been on its current batch
}

func (e *StallError) Error() string {
	return fmt.Sprintf("ingest loop stuck on one batch for %v", e.Stalled.Round(time.Millisecond))
}

// Health reports whether Run makes progress. It returns nil while Run is
// waiting for datagrams (an idle socket is healthy) or has spent less than
// limit on the batch it is storing, ErrNotRunning when Run is not running,
// and a *StallError when Run has been on one batch for limit or longer. It
// is safe to call from any goroutine and does not allocate when healthy.
func (in *Ingester) Health(limit time.Duration) error {
	if !in.running.Load() {
		return ErrNotRunning
	}
	if in.waiting.Load() {
		return nil
	}
	if d := time.Since(in.epoch) - time.Duration(in.batchAt.Load()); d >= limit {
		return &StallError{Stalled: d}
	}
	return nil
}

// startBatch records that Run stopped waiting and works on a batch.
func (in *Ingester) startBatch() {
	in.batchAt.Store(int64(time.Since(in.epoch)))
	in.waiting.Store(false)
}

// New creates an Ingester reading conn and writing w. conn must have
// SO_PASSCRED set (dgram.Listen and dgram.Prepare do).
func New(conn *net.UnixConn, w *shmring.Writer, opts Options) (*Ingester, error) {
	if opts.MaxMessage == 0 {
		opts.MaxMessage = dgram.DefaultMaxDatagram
	}
	rx, err := dgram.NewReceiver(conn, dgram.ReceiverOptions{BatchSize: opts.BatchSize, MaxDatagram: opts.MaxMessage})
	if err != nil {
		return nil, err
	}
	in := &Ingester{
		conn: conn,
		rx:   rx,
		w:    w,
		log:  opts.Logger,
		now:  opts.Now,
		buf:  make([]byte, 0, 4096),

		origin: origin.New(opts.Origin),
		limit:  newLimiter(opts.RateLimit),
		epoch:  time.Now(),
		self:   senderCreds{pid: uint32(os.Getpid()), uid: uint32(os.Getuid()), gid: uint32(os.Getgid())},

		arrivals: opts.Arrivals,

		syncUrgent: opts.SyncUrgent,
		urgentTime: histogram.New(UrgentBuckets[:]),
	}
	if in.arrivals != nil {
		in.uids = make([]uint32, 0, 64) // grows to a batch once, if ever
	}
	// One clock reading per batch: the parser infers an RFC 3164 stamp's
	// year from the receive time rather than reading the clock per datagram.
	in.parser.Now = func() time.Time { return in.recvAt }
	in.counters.init()
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	if in.now == nil {
		in.now = time.Now
	}
	return in, nil
}

// Run reads and stores datagrams until ctx is done, then publishes what it
// read and returns nil. Datagrams that arrive after that stay queued in the
// socket for whoever reads it next. Any other error ends Run.
func (in *Ingester) Run(ctx context.Context) error {
	in.startBatch()
	in.running.Store(true)
	defer in.running.Store(false)
	// Cancelling ctx interrupts a blocked Receive by moving the read
	// deadline to now. Run clears it again before returning, or the next
	// reader of conn (a new Ingester on the same socket) would fail at once.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		in.conn.SetReadDeadline(time.Now())
		close(interrupted)
	})
	// With a rate limit, the read deadline is also moved (here, in this
	// goroutine) to when the next suppression note is due, so that the
	// note is written even if no datagram comes; ctx is checked after each
	// move, as the move could undo the interruption's.
	var ticking bool
	defer func() {
		if !stop() {
			<-interrupted
			in.conn.SetReadDeadline(time.Time{})
		} else if ticking {
			in.conn.SetReadDeadline(time.Time{})
		}
	}()
	if in.arrivals != nil {
		in.arrivals.Start(in.w.Stats().Head)
		defer in.arrivals.Stop()
	}
	defer in.w.Publish()
	defer in.writeNotes(true) // report every drop before another process takes over
	for {
		if in.limit != nil {
			if due, ok := in.limit.due(); ok {
				in.conn.SetReadDeadline(time.Unix(0, due))
				ticking = true
			} else if ticking {
				in.conn.SetReadDeadline(time.Time{})
				ticking = false
			}
			if ctx.Err() != nil {
				return nil
			}
		}
		in.waiting.Store(true)
		msgs, err := in.rx.Receive()
		in.startBatch()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if ctx.Err() != nil {
					return nil
				}
				if ticking {
					in.writeNotes(false)
					in.w.Publish()
					continue
				}
			}
			return fmt.Errorf("receive: %w", err)
		}
		in.recvAt = in.now()
		in.origin.Begin(in.recvAt)
		now := in.recvAt.UnixNano()
		if in.limit != nil {
			in.writeNotesAt(now, false)
		}
		for i := range msgs {
			in.store(&msgs[i], now)
		}
		// Counted before publishing, like the datagrams in store, so that
		// a reader who sees a record also sees it in Stats.
		in.batch()
		in.w.Publish()
		if len(in.uids) > 0 {
			in.arrivals.Published(in.uids, in.last+1)
			in.uids = in.uids[:0]
		}
		in.syncIfUrgent()
	}
}

// syncIfUrgent makes the batch just published durable if it holds an
// urgent record (Options.SyncUrgent), before Run reads the next one. A
// failed sync is counted by the ring writer (shmring.Writer.SyncStats).
func (in *Ingester) syncIfUrgent() {
	if !in.urgent {
		return
	}
	in.urgent = false
	if _, err := in.w.Sync(); err == nil {
		in.urgentTime.Observe(time.Since(in.epoch) - time.Duration(in.batchAt.Load()))
	}
}

// UrgentLatency writes into counts, which has one element per
// UrgentBuckets bound, how many batches holding an urgent record were
// durable within each bound of their arrival (cumulative), and returns
// how many there were and the sum of those times in seconds. It is safe
// to call from any goroutine.
func (in *Ingester) UrgentLatency(counts []uint64) (count uint64, sum float64) {
	return in.urgentTime.Snapshot(counts)
}

// store parses one datagram and adds it to the ring (unpublished).
func (in *Ingester) store(m *dgram.Msg, now int64) {
	if in.limit != nil && !in.limit.allow(keyOf(m), now) {
		m.CloseFDs()
		in.count(ReasonRateLimited)
		return
	}
	data := m.Data
	truncated := m.Truncated
	if m.ControlTruncated {
		in.count(ReasonControlTruncated)
	}
	if len(m.FDs) > 0 {
		if len(data) == 0 && len(m.FDs) == 1 {
			// journald's large-entry protocol: an empty datagram and a sealed memfd.
			d, trunc, err := dgram.ReadSealedMemfd(m.FDs[0], int64(in.maxEntry()))
			if err != nil {
				in.count(ReasonRejectedFD)
				in.log.Debug("rejected passed descriptor", "pid", m.Creds.PID, "err", err)
			} else {
				data, truncated = d, trunc
			}
		} else {
			in.countN(ReasonRejectedFD, uint64(len(m.FDs)))
		}
		m.CloseFDs()
	}
	if len(data) == 0 {
		in.count(ReasonEmpty)
		return
	}
	e := &in.entry
	in.parser.Parse(data, e)
	fault.Ingest(e.Message)
	if truncated {
		e.Flags |= record.FlagTruncated
		in.count(ReasonTruncated)
	}
	if m.Creds.OK {
		e.Flags |= record.FlagCreds
		e.PID, e.UID, e.GID = m.Creds.PID, m.Creds.UID, m.Creds.GID
		in.origin.Lookup(e.PID, &e.Origin)
	} else {
		in.count(ReasonNoCredentials)
	}
	if e.Flags&record.FlagMalformed != 0 {
		in.count(ReasonMalformed)
	}
	if e.Flags&record.FlagInvalidUTF8 != 0 {
		in.count(ReasonInvalidUTF8)
	}
	in.buf = record.AppendEncode(in.buf[:0], e)
	if len(in.buf) > in.w.MaxPayload() {
		in.shrink(e)
	}
	seq, err := in.w.Add(now, in.buf)
	if err != nil {
		// Cannot happen after shrink; count rather than lose silently.
		in.count(ReasonEntryTooLarge)
		return
	}
	in.last = seq
	if in.arrivals != nil && m.Creds.OK && (len(in.uids) == 0 || in.uids[len(in.uids)-1] != e.UID) {
		in.uids = append(in.uids, e.UID)
	}
	if in.syncUrgent && e.Severity() <= UrgentSeverity {
		in.urgent = true
	}
	f := int(e.Format)
	if f >= NumFormats {
		f = int(record.FormatRaw)
	}
	in.stored(f, len(data))
}

// keyOf is the rate limiter's key for m's sender.
func keyOf(m *dgram.Msg) senderKey {
	if !m.Creds.OK {
		return noCredsKey
	}
	return senderKey{uid: m.Creds.UID, pid: m.Creds.PID}
}

// writeNotes adds (unpublished) a suppression note for every sender whose
// window has ended with messages dropped, or for every sender with drops
// if all.
func (in *Ingester) writeNotes(all bool) {
	if in.limit != nil {
		in.writeNotesAt(in.now().UnixNano(), all)
	}
}

func (in *Ingester) writeNotesAt(now int64, all bool) {
	in.limit.notes(now, all, func(key senderKey, dropped uint64) {
		e := &in.entry
		in.note = suppressionNote(e, in.note, key, dropped, in.self)
		in.buf = record.AppendEncode(in.buf[:0], e)
		if _, err := in.w.Add(now, in.buf); err != nil {
			in.log.Warn("store suppression note", "err", err)
			return
		}
		in.log.Debug("rate limit: suppressed messages", "pid", key.pid, "uid", key.uid, "suppressed", dropped)
	})
}

// shrink cuts an entry that does not fit in one ring record: fields go
// first, then the message, then the hostname, MSGID and tag (which can be
// as long as the datagram: a JSON "host", an RFC 5424 APP-NAME), each cut
// at a UTF-8 boundary, and last the origin fields (whole, as paths are not
// cut). The entry is flagged truncated and re-encoded into
// in.buf, which then always fits.
func (in *Ingester) shrink(e *record.Entry) {
	in.count(ReasonEntryTooLarge)
	e.Flags |= record.FlagTruncated
	e.Fields = e.Fields[:0]
	for _, s := range [...]*[]byte{&e.Message, &e.Hostname, &e.MsgID, &e.Tag} {
		over := record.EncodedLen(e) - in.w.MaxPayload()
		if over <= 0 {
			break
		}
		*s = cutAtRune(*s, len(*s)-over)
	}
	if record.EncodedLen(e) > in.w.MaxPayload() {
		e.Origin = record.Origin{}
	}
	in.buf = record.AppendEncode(in.buf[:0], e)
}

// cutAtRune returns the first n bytes of b, or fewer so as not to split a
// UTF-8 encoded rune. Bytes that are not UTF-8 are cut at n exactly.
func cutAtRune(b []byte, n int) []byte {
	if n <= 0 {
		return b[:0]
	}
	if n >= len(b) {
		return b
	}
	if utf8.RuneStart(b[n]) {
		return b[:n]
	}
	for j := n - 1; j >= 0 && j > n-utf8.UTFMax; j-- {
		if utf8.RuneStart(b[j]) {
			if r, size := utf8.DecodeRune(b[j:]); (r != utf8.RuneError || size > 1) && j+size > n {
				return b[:j]
			}
			break
		}
	}
	return b[:n]
}

// maxEntry is the largest memfd entry read: what fits in one ring record.
func (in *Ingester) maxEntry() int { return in.w.MaxPayload() }

func (in *Ingester) count(reason string) { in.countN(reason, 1) }

// Stats returns the counters. It is safe to call from any goroutine.
// Built with the noinstrument tag (for bench/instrument only) it returns
// zeros.
func (in *Ingester) Stats() Stats { return in.stats() }
