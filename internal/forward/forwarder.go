package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/collectord/collectord/pkg/shmring"
)

// Options are how Run reports. The zero value reports nothing.
type Options struct {
	// Logger receives rare events: gaps, breaker changes, failures.
	// Default: discard.
	Logger *slog.Logger
	// Report, if not nil, receives a snapshot every ReportInterval and a
	// last one when Run returns. It runs on Run's goroutine.
	Report func(Stats)
	// ReportInterval defaults to DefaultReportInterval.
	ReportInterval time.Duration
}

// DefaultReportInterval is how often Run reports by default.
const DefaultReportInterval = time.Second

// flushTimeout bounds how long stopping waits for the brokers to
// acknowledge what was sent: what they have not acknowledged by then is
// sent again by the next forwarder.
const flushTimeout = 5 * time.Second

// tick is how often the producing loop looks up from the ring: to judge
// the cluster's health and to report.
const tick = 250 * time.Millisecond

// burstRate is the rate of incoming records, per second, above which a
// yielding forwarder waits for the burst to pass: at this rate forwarding
// would take a few percent of a CPU, beyond it ingest needs the CPU more.
const burstRate = 20000

// Run forwards the ring's records to Kafka until ctx is done, resuming
// after the position in the cursor file, and returns nil then; it returns
// an error only when it cannot start (a ring or cursor it cannot open, a
// TLS or SASL file it cannot read). A cluster that is down is not an
// error: Run retries it for as long as it runs.
func Run(ctx context.Context, cfg Config, opts Options) error {
	cfg = cfg.withDefaults()
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	f := &forwarder{cfg: cfg, opts: opts, log: opts.Logger, c: newCounters(), progress: make(chan struct{}, 1)}
	f.records.New = func() any { return new(outRecord) }
	f.onPromise = f.promise
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.opts.ReportInterval <= 0 {
		f.opts.ReportInterval = DefaultReportInterval
	}
	var err error
	if f.kopts, err = clientOptions(cfg, f); err != nil {
		return err
	}
	// Wait for the previous forwarder (an upgrade's old process) to write
	// its last position and let go.
	waiting := false
	f.cursor, err = lockCursor(cfg.Cursor, func() bool {
		if !waiting {
			f.log.Info("waiting for the previous forwarder to release the cursor", "cursor", cfg.Cursor)
			waiting = true
		}
		t := time.NewTimer(50 * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer f.cursor.close()
	if f.ring, err = shmring.OpenReader(cfg.Ring); err != nil {
		return fmt.Errorf("open ring: %w", err)
	}
	defer f.ring.Close()
	f.ringID = RingID(f.ring.Stats())
	start, err := f.startPosition()
	if err != nil {
		return err
	}
	f.enc = newEncoder(cfg, f.ringID)
	f.cur = f.ring.Cursor(start)
	f.lagCur = f.ring.Cursor(start)
	f.track = newTracker(start)
	f.written = start - 1
	f.breaker = newBreaker(cfg.BreakerThreshold, cfg.BreakerMin, cfg.BreakerMax)
	f.setPriority(f.cfg.YieldLag > 0)
	f.log.Info("forwarding", "brokers", strings.Join(cfg.Brokers, ","), "topic", cfg.Topic, "from_seq", start, "ring_id", f.ringID)

	f.run(ctx)
	f.stop()
	if opts.Report != nil {
		opts.Report(f.stats())
	}
	return nil
}

// RingID is a ring's identity as the query protocol and the Kafka headers
// give it: the hex of its creation time. Sequence numbers are meaningful
// only with it.
func RingID(st shmring.Stats) string { return fmt.Sprintf("%016x", st.Created.UnixNano()) }

// forwarder is one Run. Its fields belong to Run's goroutine, except those
// that say otherwise.
type forwarder struct {
	cfg   Config
	opts  Options
	log   *slog.Logger
	kopts []kgo.Opt

	cursor  *cursorFile
	ring    *shmring.Reader
	ringID  string
	enc     *encoder
	cur     *shmring.Cursor // the next record to send
	lagCur  *shmring.Cursor // for the age of the oldest unsent record
	track   *tracker        // shared with the promise goroutine
	written uint64          // the position last written to the cursor file
	// ahead holds, in increasing order, records past the acknowledged
	// position that the brokers acknowledged to a client since reset and
	// the cursor has not read again: they are not sent again, and not
	// counted lost if the ring overwrites them.
	ahead   []uint64
	breaker *breaker
	client  *kgo.Client

	c *counters // shared with the promise goroutine and hooks

	// Signals from the promise goroutine and the client's hooks, read
	// and cleared by the producing loop once per tick.
	acks      atomic.Uint64 // records acknowledged
	progress  chan struct{} // a record was acknowledged (capacity 1)
	records   sync.Pool     // *outRecord
	onPromise func(*kgo.Record, error)
	failed    atomic.Bool // a record failed, or a broker could not be reached
	lastAck   time.Time   // when acks last grew (producing loop's view)
	lastSeen  uint64      // acks at the last tick
	lastGap   uint64      // the seq a loss was last logged before
	yielding  bool        // running under SCHED_IDLE (see Config.YieldLag)
	paused    bool        // yielding through a burst: sending nothing
	rateAt    time.Time   // when rateHead was read
	rateHead  uint64      // the ring's head then
}

// setPriority yields the CPU (SCHED_IDLE) or takes its share (nice
// Config.Nice), and reports whether it managed to.
func (f *forwarder) setPriority(yield bool) bool {
	if err := setPriority(yield, f.cfg.Nice); err != nil {
		f.log.Warn("cannot change the forwarder's priority", "yield", yield, "err", err)
		return false
	}
	f.yielding = yield
	return true
}

// adjustPriority yields the CPU while the forwarder is less than YieldLag
// behind, and takes its share beyond, with hysteresis.
func (f *forwarder) adjustPriority() {
	if f.cfg.YieldLag <= 0 {
		return
	}
	// A burst: logs arrive faster than burstRate. While yielding, the
	// forwarder waits for it to pass rather than compete with ingest.
	now, head := time.Now(), f.ring.Head()
	if !f.rateAt.IsZero() {
		rate := float64(head-f.rateHead) / now.Sub(f.rateAt).Seconds()
		f.paused = f.yielding && rate > burstRate
	}
	f.rateAt, f.rateHead = now, head
	lag := f.lagSeconds()
	switch {
	case f.yielding && lag >= f.cfg.YieldLag.Seconds():
		f.paused = false
		if f.setPriority(false) {
			f.log.Info("forwarding fell behind: taking its share of the CPU", "lag_seconds", lag, "nice", f.cfg.Nice)
		}
	case !f.yielding && lag < f.cfg.YieldLag.Seconds()/2:
		if f.setPriority(true) {
			f.log.Info("forwarding caught up: yielding the CPU to ingest", "lag_seconds", lag)
		}
	}
}

// startPosition reads the cursor file: forwarding resumes after its seq
// on the same ring, at the ring's oldest record otherwise.
func (f *forwarder) startPosition() (uint64, error) {
	pos, err := f.cursor.read()
	if err != nil {
		return 0, err
	}
	st := f.ring.Stats()
	switch {
	case pos.RingID == f.ringID:
		return pos.Seq + 1, nil
	case pos.RingID != "":
		f.log.Warn("the cursor belongs to another ring (recreated?): forwarding from its oldest record",
			"cursor_ring_id", pos.RingID, "ring_id", f.ringID)
	}
	return max(st.Oldest, shmring.FirstSeq), nil
}

// run forwards until ctx is done, moving between the breaker's states.
func (f *forwarder) run(ctx context.Context) {
	state := BreakerHalfOpen // a first probe opens the connection
	next := time.Now()
	report := time.NewTicker(f.opts.ReportInterval)
	defer report.Stop()
	for ctx.Err() == nil {
		f.c.breaker.Store(int32(state))
		switch state {
		case BreakerHalfOpen:
			if f.probe(ctx) {
				f.log.Info("Kafka reachable: forwarding", "breaker", "closed")
				state = BreakerClosed
				continue
			}
			d := f.breaker.openFor()
			f.log.Warn("Kafka unreachable: circuit breaker open", "retry_in", d.Round(time.Millisecond))
			next, state = time.Now().Add(d), BreakerOpen
		case BreakerOpen:
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
			case <-t.C:
				state = BreakerHalfOpen
			case <-report.C:
				f.report()
				// Falling behind while the cluster is down: take the
				// share of the CPU the backlog will need.
				f.adjustPriority()
			}
			t.Stop()
		case BreakerClosed:
			if !f.produce(ctx, report.C) {
				continue // ctx done
			}
			d := f.breaker.openFor()
			f.log.Warn("Kafka failing: circuit breaker open; records not acknowledged will be sent again",
				"retry_in", d.Round(time.Millisecond), "pending", f.track.pending())
			f.resetClient()
			next, state = time.Now().Add(d), BreakerOpen
		}
	}
}

// probe makes a client and asks a broker for metadata; on success the
// client stays for producing.
func (f *forwarder) probe(ctx context.Context) bool {
	cl, err := kgo.NewClient(f.kopts...)
	if err != nil {
		f.log.Error("create Kafka client", "err", err)
		return false
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = cl.Ping(pctx)
	cancel()
	if err != nil {
		cl.Close()
		if ctx.Err() == nil {
			f.c.error(ErrProbe)
			f.log.Debug("probe failed", "err", err)
		}
		return false
	}
	f.client = cl
	f.lastAck, f.lastSeen = time.Now(), f.acks.Load()
	f.failed.Store(false)
	return true
}

// resetClient closes the client: what it held unacknowledged is sent again
// from the acknowledged position by the next one.
func (f *forwarder) resetClient() {
	if f.client == nil {
		return
	}
	f.client.Close()
	f.client = nil
	done, _ := f.track.position()
	// What the tracker held comes before what ahead still holds, which
	// the cursor had not reached.
	f.ahead = append(f.track.reset(done+1), f.ahead...)
	f.cur.Seek(done + 1)
}

// produce sends records until ctx is done (false) or the breaker opens
// (true). It never blocks in the client: at MaxBuffered records pending it
// waits for an acknowledgement, so that the breaker is judged on time
// however the cluster behaves.
func (f *forwarder) produce(ctx context.Context, report <-chan time.Time) bool {
	health := time.NewTicker(tick)
	defer health.Stop()
	for {
		// Work when there is some; otherwise (or while MaxBuffered
		// records wait, or a burst passes) wait for an event.
		var wake <-chan struct{}
		select {
		case <-ctx.Done():
			return false
		case <-health.C:
			if f.onTick() {
				return true
			}
			continue
		case <-report:
			f.report()
			continue
		default:
			full, ok := f.step(ctx)
			if !ok {
				return false
			}
			if !full {
				continue
			}
			wake = f.progress
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-health.C:
			if f.onTick() {
				return true
			}
		case <-report:
			f.report()
		}
	}
}

// onTick runs once per tick: it judges the cluster, saves the position
// and adjusts the priority. It reports whether the breaker opens.
func (f *forwarder) onTick() bool {
	if f.judge() {
		return true
	}
	f.saveCursor()
	f.adjustPriority()
	return false
}

// step sends the next record, or waits up to a tick for one when the ring
// has no more. It reports full when MaxBuffered records were read past the
// position the cursor file records, and false when the ring cannot be
// read.
//
// Those records, pending or acknowledged since the file was last written,
// are what a forwarder killed now sends again: bounding them (not only
// the pending ones) bounds the duplicates by MaxBuffered, however fast the
// brokers acknowledge between two ticks.
func (f *forwarder) step(ctx context.Context) (full, ok bool) {
	if f.paused {
		return true, true // a burst: wait for the next tick
	}
	if f.unrecorded() >= uint64(f.cfg.MaxBuffered) {
		f.saveCursor()
		if f.unrecorded() >= uint64(f.cfg.MaxBuffered) {
			return true, true
		}
	}
	rec, lost, err := f.cur.Next()
	end := f.cur.Pos() // where the records skipped end: rec, or the head
	if err == nil {
		end = rec.Seq
	}
	if lost > 0 {
		f.noteLoss(end-lost, end)
	}
	if errors.Is(err, shmring.ErrNoRecord) {
		f.track.skipped(f.cur.Pos())
		f.saveCursor()
		wctx, cancel := context.WithTimeout(ctx, tick)
		f.ring.Wait(wctx, f.cur.Pos())
		cancel()
		return false, true
	}
	if err != nil {
		f.log.Error("read ring", "err", err)
		return false, false
	}
	if len(f.ahead) > 0 && f.ahead[0] == rec.Seq {
		// Acknowledged to a client reset since: done already.
		f.ahead = f.ahead[1:]
		f.track.skipped(rec.Seq + 1)
		return false, true
	}
	o := f.records.Get().(*outRecord)
	if !f.enc.encode(o, rec.Seq, rec.Time, rec.Payload) {
		f.records.Put(o)
		f.c.error(ErrDecode)
		f.c.dropped.Add(1)
		f.log.Error("record does not decode: not forwarded", "seq", rec.Seq)
		f.track.skipped(rec.Seq + 1)
		return false, true
	}
	f.track.sent(rec.Seq, rec.Time)
	// Not ctx: the client fails the records it holds when the context
	// given to Produce ends, and ctx ends when Run stops, which is when
	// stop flushes them. (Produce never blocks here: the client may
	// buffer twice MaxBuffered.)
	f.client.Produce(context.Background(), &o.Record, f.onPromise)
	return false, true
}

// unrecorded returns how many records were read past the position the
// cursor file records. It covers the pending ones.
func (f *forwarder) unrecorded() uint64 { return f.cur.Pos() - 1 - f.written }

// promise runs on the client's promise goroutine, one at a time; then the
// record goes back to the pool.
func (f *forwarder) promise(r *kgo.Record, err error) {
	o := recordOf(r)
	f.settle(o.seq, len(o.Value), err)
	o.Key = nil
	f.records.Put(o)
}

// settle accounts for one record's outcome.
func (f *forwarder) settle(seq uint64, size int, err error) {
	switch {
	case err == nil:
		if f.track.acked(seq) {
			f.c.records.Add(1)
			f.c.bytes.Add(uint64(size))
			f.acks.Add(1)
			select {
			case f.progress <- struct{}{}:
			default:
			}
		}
	case errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge):
		// Refused for good: sending it again would block everything after it.
		if f.track.acked(seq) {
			f.c.error(ErrTooLarge)
			f.c.dropped.Add(1)
			f.log.Error("the brokers refuse the record as too large: not forwarded", "seq", seq, "bytes", size)
		}
	case errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, context.Canceled):
		// A client closed on purpose: the record is sent again.
	default:
		f.c.error(ErrProduce)
		f.failed.Store(true)
		f.log.Debug("record failed", "seq", seq, "err", err)
	}
}

// judge runs once per tick: acknowledgements count as a success; failures
// (or a stall) while records wait count against the breaker. It reports
// whether the breaker opens.
func (f *forwarder) judge() bool {
	now := time.Now()
	acks := f.acks.Load()
	failed := f.failed.Swap(false)
	if acks != f.lastSeen {
		f.lastSeen, f.lastAck = acks, now
		f.breaker.success()
		return false
	}
	if f.track.pending() == 0 {
		f.lastAck = now // nothing waits: nothing can stall
		return false
	}
	stalled := now.Sub(f.lastAck) >= f.cfg.StallTimeout
	if stalled {
		f.c.error(ErrStall)
		f.lastAck = now
	}
	return (failed || stalled) && f.breaker.failure()
}

// noteLoss counts the records from from to end (excluded) that the ring
// overwrote before the brokers acknowledged them, and logs each gap once.
func (f *forwarder) noteLoss(from, end uint64) {
	lost := end - from
	for len(f.ahead) > 0 && f.ahead[0] < end {
		if f.ahead[0] >= from {
			lost-- // acknowledged before the client was reset
		}
		f.ahead = f.ahead[1:]
	}
	f.c.lost.Add(lost)
	if from != f.lastGap && lost > 0 {
		f.log.Error("records lost: the ring overwrote them before they were forwarded",
			"lost", lost, "first_seq", from, "resumed_at_seq", end)
		f.lastGap = from
	}
}

// saveCursor writes the acknowledged position when it moved.
func (f *forwarder) saveCursor() {
	done, _ := f.track.position()
	if done == f.written {
		return
	}
	if err := f.cursor.write(Position{RingID: f.ringID, Seq: done}); err != nil {
		f.log.Error("save the forwarding position", "err", err)
		return
	}
	f.written = done
}

// stop flushes what the client holds, under flushTimeout, and saves the
// position.
func (f *forwarder) stop() {
	f.c.breaker.Store(int32(BreakerClosed))
	if f.client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		if err := f.client.Flush(ctx); err != nil {
			f.log.Warn("stop: not every record was acknowledged in time; they will be sent again", "pending", f.track.pending())
		}
		cancel()
		f.client.Close()
	}
	f.saveCursor()
	done, _ := f.track.position()
	f.log.Info("forwarder stopped", "acked_seq", done)
}

// report sends a snapshot to Options.Report.
func (f *forwarder) report() {
	if f.opts.Report != nil {
		f.opts.Report(f.stats())
	}
}

func (f *forwarder) stats() Stats {
	s := f.c.snapshot()
	done, _ := f.track.position()
	s.Acked = done
	s.Pending = f.track.pending()
	if head := f.ring.Head(); head > done+1 {
		s.LagRecords = head - 1 - done
	}
	s.LagSeconds = f.lagSeconds()
	return s
}

// lagSeconds is the age of the oldest record not yet done: pending, or
// not yet sent; 0 when every record is done.
func (f *forwarder) lagSeconds() float64 {
	done, oldestPending := f.track.position()
	t := oldestPending
	if t == 0 && f.ring.Head() > done+1 {
		f.lagCur.Seek(done + 1)
		if rec, _, err := f.lagCur.Next(); err == nil {
			t = rec.Time
		}
	}
	if t == 0 {
		return 0
	}
	return max(time.Since(time.Unix(0, t)).Seconds(), 0)
}

// hooks count connection and request failures and time produce requests.
type hooks struct{ f *forwarder }

func (h hooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.f.c.error(ErrConnect)
		h.f.failed.Store(true)
	}
}

func (h hooks) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e2e kgo.BrokerE2E) {
	if e2e.WriteErr != nil || e2e.ReadErr != nil {
		h.f.c.error(ErrRequest)
		return
	}
	if key == 0 { // Produce
		h.f.c.latency.Observe(e2e.DurationE2E())
	}
}
