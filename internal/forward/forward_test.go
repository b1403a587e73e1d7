package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

const testTopic = "logs"

// testRing is a real ring in t.TempDir(), written by the test.
type testRing struct {
	path string
	w    *shmring.Writer
	buf  []byte
}

func newTestRing(t testing.TB, size uint64) *testRing {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ring")
	w, err := shmring.OpenWriter(path, shmring.Options{Size: size})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return &testRing{path: path, w: w}
}

// add appends n records "msg i" with uid i%3 and publishes them; it
// returns the first sequence number.
func (r *testRing) add(t testing.TB, from, n int) uint64 {
	t.Helper()
	var first uint64
	for i := from; i < from+n; i++ {
		e := record.Entry{Format: record.FormatRFC3164, Flags: record.FlagCreds, Priority: 13, PID: 42, UID: uint32(i % 3),
			Tag: []byte("app"), Message: []byte(fmt.Sprintf("msg %d", i))}
		r.buf = record.AppendEncode(r.buf[:0], &e)
		seq, err := r.w.Add(time.Now().UnixNano(), r.buf)
		if err != nil {
			t.Fatal(err)
		}
		if i == from {
			first = seq
		}
	}
	r.w.Publish()
	return first
}

// newCluster starts an in-process kfake cluster of three brokers holding
// the test topic.
func newCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(3, testTopic)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// consumed is a record as a consumer of the topic sees it.
type consumed struct {
	seq    uint64
	ringID string
	host   string
	key    string
	value  []byte
	ts     time.Time
}

// consumeAll reads the topic from the start until it holds want distinct
// sequence numbers, and returns every record read (duplicates included).
func consumeAll(t *testing.T, brokers []string, want int) []consumed {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(testTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []consumed
	seen := map[uint64]bool{}
	for len(seen) < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d distinct of %d: %v", len(seen), want, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			c := consumed{key: string(r.Key), value: r.Value, ts: r.Timestamp}
			for _, h := range r.Headers {
				switch h.Key {
				case HeaderSeq:
					c.seq, _ = strconv.ParseUint(string(h.Value), 10, 64)
				case HeaderRingID:
					c.ringID = string(h.Value)
				case HeaderHost:
					c.host = string(h.Value)
				}
			}
			seen[c.seq] = true
			out = append(out, c)
		})
	}
	return out
}

// runForwarder runs Run in a goroutine until the test stops it.
type runningForwarder struct {
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	last   Stats
}

func startForwarder(t testing.TB, cfg Config) *runningForwarder {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rf := &runningForwarder{cancel: cancel, done: make(chan error, 1)}
	go func() {
		rf.done <- Run(ctx, cfg, Options{ReportInterval: 50 * time.Millisecond, Report: func(s Stats) {
			rf.mu.Lock()
			rf.last = s
			rf.mu.Unlock()
		}})
	}()
	t.Cleanup(func() { rf.stop(t) })
	return rf
}

func (rf *runningForwarder) stop(t testing.TB) Stats {
	t.Helper()
	if rf.cancel == nil {
		return rf.stats()
	}
	rf.cancel()
	rf.cancel = nil
	select {
	case err := <-rf.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	return rf.stats()
}

func (rf *runningForwarder) stats() Stats {
	rf.mu.Lock()
	defer rf.mu.Unlock()
	return rf.last
}

// waitAcked waits until the forwarder reports seq acknowledged.
func (rf *runningForwarder) waitAcked(t testing.TB, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for rf.stats().Acked < seq {
		if time.Now().After(deadline) {
			t.Fatalf("acked %d, want %d; stats %+v", rf.stats().Acked, seq, rf.stats())
		}
		time.Sleep(10 * time.Millisecond) // polling the reports
	}
}

// Every record reaches the topic once, as logctl's JSON plus the host,
// with its headers, key and timestamp; the cursor file records the last.
func TestForwardAll(t *testing.T) {
	c := newCluster(t)
	ring := newTestRing(t, 4<<20)
	ring.add(t, 0, 500)
	cfg := Config{Ring: ring.path, Brokers: c.ListenAddrs(), Topic: testTopic, Host: "box", Key: "uid"}
	rf := startForwarder(t, cfg)
	ring.add(t, 500, 500)
	rf.waitAcked(t, 1000)
	st := rf.stop(t)
	if st.Records != 1000 || st.Lost != 0 || st.Dropped != 0 || st.LagRecords != 0 {
		t.Errorf("stats %+v", st)
	}
	got := consumeAll(t, c.ListenAddrs(), 1000)
	if len(got) != 1000 {
		t.Errorf("%d records on the topic, want 1000 (no duplicates in a clean run)", len(got))
	}
	r, _ := shmring.OpenReader(ring.path)
	defer r.Close()
	ringID := RingID(r.Stats())
	cur := r.Cursor(shmring.FirstSeq)
	bySeq := map[uint64]consumed{}
	for _, g := range got {
		bySeq[g.seq] = g
	}
	var e record.Entry
	for seq := uint64(1); seq <= 1000; seq++ {
		rec, _, err := cur.Next()
		if err != nil {
			t.Fatal(err)
		}
		g, ok := bySeq[seq]
		if !ok {
			t.Fatalf("seq %d missing", seq)
		}
		if err := record.Decode(rec.Payload, &e); err != nil {
			t.Fatal(err)
		}
		want := append(record.AppendJSON(nil, rec.Seq, rec.Time, &e), 0)
		want = append(want[:len(want)-2], `,"host":"box"}`...)
		if !bytes.Equal(g.value, want) {
			t.Fatalf("seq %d value\n got %s\nwant %s", seq, g.value, want)
		}
		if g.ringID != ringID || g.host != "box" || g.key != strconv.Itoa(int(e.UID)) ||
			!g.ts.Equal(time.Unix(0, rec.Time).Truncate(time.Millisecond)) {
			t.Fatalf("seq %d: ring id %q host %q key %q ts %v; want %q box %d %v", seq, g.ringID, g.host, g.key, g.ts, ringID, e.UID, time.Unix(0, rec.Time))
		}
		var v map[string]any
		if err := json.Unmarshal(g.value, &v); err != nil {
			t.Fatalf("seq %d: not JSON: %v", seq, err)
		}
	}
	cursor := &cursorFile{path: ring.path + CursorSuffix}
	if pos, err := cursor.read(); err != nil || pos != (Position{RingID: ringID, Seq: 1000}) {
		t.Errorf("cursor file: %+v, %v", pos, err)
	}
}

// A second Run resumes after the cursor: records forwarded once are not
// sent again, and those written while no forwarder ran are.
func TestForwardResumes(t *testing.T) {
	c := newCluster(t)
	ring := newTestRing(t, 4<<20)
	cfg := Config{Ring: ring.path, Brokers: c.ListenAddrs(), Topic: testTopic, Format: "raw"}
	ring.add(t, 0, 100)
	rf := startForwarder(t, cfg)
	rf.waitAcked(t, 100)
	rf.stop(t)
	ring.add(t, 100, 100)
	rf = startForwarder(t, cfg)
	rf.waitAcked(t, 200)
	rf.stop(t)
	got := consumeAll(t, c.ListenAddrs(), 200)
	if len(got) != 200 {
		t.Errorf("%d records on the topic, want 200", len(got))
	}
	for _, g := range got {
		if want := fmt.Sprintf("msg %d", g.seq-1); string(g.value) != want {
			t.Fatalf("seq %d: raw value %q, want %q", g.seq, g.value, want)
		}
	}
}

// A cluster that is down when the forwarder starts does not stop it:
// records wait in the ring, the breaker opens, and when the cluster
// comes back every record is delivered.
func TestForwardClusterDownAtStart(t *testing.T) {
	c := newCluster(t)
	addrs := c.ListenAddrs()
	c.Close()
	ring := newTestRing(t, 4<<20)
	ring.add(t, 0, 50)
	cfg := Config{Ring: ring.path, Brokers: addrs, Topic: testTopic, BreakerMin: 100 * time.Millisecond, BreakerMax: 200 * time.Millisecond}
	rf := startForwarder(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for rf.stats().Breaker != BreakerOpen || rf.stats().Errors[ErrProbe] < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("breaker never opened: %+v", rf.stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := rf.stats(); st.LagRecords != 50 || st.LagSeconds <= 0 {
		t.Errorf("while down: lag %d records, %v s; want 50 and > 0", st.LagRecords, st.LagSeconds)
	}
	var ports []int
	for _, a := range addrs {
		_, p, _ := splitHostPort(a)
		ports = append(ports, p)
	}
	c2 := newCluster(t, kfake.Ports(ports...))
	rf.waitAcked(t, 50)
	rf.stop(t)
	if got := consumeAll(t, c2.ListenAddrs(), 50); len(got) != 50 {
		t.Errorf("%d records on the topic, want 50", len(got))
	}
}

// When the ring overwrites records the forwarder has not sent, it counts
// exactly those as lost and goes on with the oldest record left.
func TestForwardCountsLoss(t *testing.T) {
	c := newCluster(t)
	addrs := c.ListenAddrs()
	c.Close()
	ring := newTestRing(t, shmring.MinSize)
	cfg := Config{Ring: ring.path, Brokers: addrs, Topic: testTopic, BreakerMin: 50 * time.Millisecond, BreakerMax: 100 * time.Millisecond}
	ring.add(t, 0, 10)
	rf := startForwarder(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for rf.stats().Errors[ErrProbe] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no probe failed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Lap the ring while the cluster is down.
	for i := 10; ; i += 100 {
		ring.add(t, i, 100)
		if r, _ := shmring.OpenReader(ring.path); r != nil {
			oldest := r.Stats().Oldest
			r.Close()
			if oldest > 200 {
				break
			}
		}
	}
	r, _ := shmring.OpenReader(ring.path)
	st := r.Stats()
	r.Close()
	var ports []int
	for _, a := range addrs {
		_, p, _ := splitHostPort(a)
		ports = append(ports, p)
	}
	newCluster(t, kfake.Ports(ports...))
	rf.waitAcked(t, st.Head-1)
	final := rf.stop(t)
	if want := st.Oldest - 1; final.Lost != want {
		t.Errorf("lost %d, want %d (every record before the oldest left, %d)", final.Lost, want, st.Oldest)
	}
	got := consumeAll(t, addrs, int(st.Head-st.Oldest))
	for _, g := range got {
		if g.seq < st.Oldest {
			t.Fatalf("seq %d delivered, but the ring had lost it", g.seq)
		}
	}
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}

// Stopping flushes: records the client still holds when Run's context
// ends (here, lingering) are sent and acknowledged, and the cursor says
// so, so that the next Run sends none of them again.
func TestForwardStopFlushes(t *testing.T) {
	c := newCluster(t)
	ring := newTestRing(t, 4<<20)
	ring.add(t, 0, 100)
	// The batch lingers a minute: only the flush on stopping sends it.
	cfg := Config{Ring: ring.path, Brokers: c.ListenAddrs(), Topic: testTopic, Linger: time.Minute}
	rf := startForwarder(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for rf.stats().Pending != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("the forwarder did not hand the 100 records to the client: %+v", rf.stats())
		}
		time.Sleep(10 * time.Millisecond) // polling the reports
	}
	st := rf.stop(t)
	if st.Acked != 100 || st.Records != 100 || st.Pending != 0 {
		t.Errorf("after stopping: acked seq %d, %d records acknowledged, %d pending; want 100, 100, 0", st.Acked, st.Records, st.Pending)
	}
	r, err := shmring.OpenReader(ring.path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cursor := &cursorFile{path: ring.path + CursorSuffix}
	if pos, err := cursor.read(); err != nil || pos != (Position{RingID: RingID(r.Stats()), Seq: 100}) {
		t.Errorf("cursor file after stopping: %+v, %v; want seq 100", pos, err)
	}
	if got := consumeAll(t, c.ListenAddrs(), 100); len(got) != 100 {
		t.Errorf("%d records on the topic, want 100", len(got))
	}
}

// At no moment do the brokers hold more than MaxBuffered records past the
// position the cursor file records: a forwarder killed then sends at most
// that many again. Each produce request the cluster receives is checked
// against the cursor file as it is then.
func TestForwardDuplicatesBoundedByMaxBuffered(t *testing.T) {
	const maxBuffered = 50
	c := newCluster(t)
	ring := newTestRing(t, 4<<20)
	ring.add(t, 0, 5000)
	cursor := &cursorFile{path: ring.path + CursorSuffix}
	var mu sync.Mutex
	var delivered, worst int64 // records in the requests before; most of them past the cursor
	var problem error
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pos, err := cursor.read()
		mu.Lock()
		defer mu.Unlock()
		if err != nil && problem == nil {
			problem = err
		}
		worst = max(worst, delivered-int64(pos.Seq))
		for _, tp := range kreq.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				var b kmsg.RecordBatch
				if err := b.ReadFrom(p.Records); err != nil && problem == nil {
					problem = err
				}
				delivered += int64(b.NumRecords)
			}
		}
		return nil, nil, false // the cluster handles it
	})
	cfg := Config{Ring: ring.path, Brokers: c.ListenAddrs(), Topic: testTopic, Linger: time.Millisecond, MaxBuffered: maxBuffered}
	rf := startForwarder(t, cfg)
	rf.waitAcked(t, 5000)
	rf.stop(t)
	mu.Lock()
	defer mu.Unlock()
	if problem != nil {
		t.Fatal(problem)
	}
	if delivered != 5000 {
		t.Errorf("the cluster received %d records, want 5000", delivered)
	}
	if worst > maxBuffered {
		t.Errorf("the cluster held up to %d records past the cursor file's position, more than MaxBuffered %d", worst, maxBuffered)
	}
}

// Records the brokers acknowledged are never counted lost: here one
// partition refuses records while the others acknowledge theirs, the
// stalled forwarder opens its breaker and drops its client, and the ring
// laps it. What it counts lost is exactly what never reached the topic.
func TestForwardLossExcludesAcknowledged(t *testing.T) {
	c := newCluster(t)
	// Key "uid": the partition of uid 0's records is led by broker 0,
	// which refuses them while held; the other partitions are led by
	// broker 1.
	held := kgo.StickyKeyPartitioner(nil).ForTopic(testTopic).Partition(&kgo.Record{Key: []byte("0")}, 3)
	for p := range int32(3) {
		node := int32(1)
		if int(p) == held {
			node = 0
		}
		if err := c.MoveTopicPartition(testTopic, p, node); err != nil {
			t.Fatal(err)
		}
	}
	var holding atomic.Bool
	holding.Store(true)
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if !holding.Load() || c.CurrentNode() != 0 {
			return nil, nil, false
		}
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range req.Topics {
			rt := kmsg.ProduceResponseTopic{Topic: tp.Topic, TopicID: tp.TopicID}
			for _, p := range tp.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.ProduceResponseTopicPartition{Partition: p.Partition, ErrorCode: kerr.NotLeaderForPartition.Code})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})

	ring := newTestRing(t, shmring.MinSize)
	ring.add(t, 0, 150) // uids 0, 1, 2 in turn: seq 1 is held
	acked := 0          // of those, records the brokers acknowledge
	for i := range 150 {
		if kgo.StickyKeyPartitioner(nil).ForTopic(testTopic).Partition(&kgo.Record{Key: []byte(strconv.Itoa(i % 3))}, 3) != held {
			acked++
		}
	}
	if acked == 0 {
		t.Fatal("every uid's partition is held")
	}
	cfg := Config{Ring: ring.path, Brokers: c.ListenAddrs(), Topic: testTopic, Key: "uid", Linger: time.Millisecond,
		StallTimeout: 300 * time.Millisecond, BreakerThreshold: 1, BreakerMin: 300 * time.Millisecond, BreakerMax: 300 * time.Millisecond}
	rf := startForwarder(t, cfg)
	deadline := time.Now().Add(30 * time.Second)
	for st := rf.stats(); st.Records < uint64(acked) || st.Breaker != BreakerOpen; st = rf.stats() {
		if time.Now().After(deadline) {
			t.Fatalf("want %d records acknowledged and the breaker open: %+v", acked, st)
		}
		time.Sleep(10 * time.Millisecond) // polling the reports
	}
	ring.add(t, 150, 3000) // laps the ring: seq 1 to 150 are overwritten
	holding.Store(false)
	r, err := shmring.OpenReader(ring.path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st := r.Stats()
	if st.Oldest <= 150 {
		t.Fatalf("the ring still holds record %d", st.Oldest)
	}
	rf.waitAcked(t, st.Head-1)
	final := rf.stop(t)
	got := consumeAll(t, c.ListenAddrs(), acked+int(st.Head-st.Oldest))
	onTopic := map[uint64]bool{}
	for _, g := range got {
		onTopic[g.seq] = true
	}
	var never uint64
	for seq := uint64(1); seq < st.Head; seq++ {
		if !onTopic[seq] {
			never++
		}
	}
	if final.Lost != never {
		t.Errorf("the forwarder counts %d records lost; %d never reached the topic", final.Lost, never)
	}
}
