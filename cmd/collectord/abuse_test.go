//go:build linux

package main

// The query server under abuse: the query port held by idle, half-open and
// slowloris connections and stalled followers while applications log at
// full speed. Ingest must store everything, a normal query must still be
// answered, and the daemon must still stop cleanly. How fast ingest goes
// meanwhile is a benchmark's question (bench/abuse/run.sh), not this test's.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/shmring"
)

// TestQueryAbuse: with 100 idle connections (hello done), 25 half-open ones
// (nothing sent), 25 slowloris ones (part of a hello frame) and 4 stalled
// followers (a follow of everything, a 4 KiB receive buffer, not read)
// connected, 4 blocking senders send at least 50,000 datagrams as fast as
// the daemon takes them, and keep sending until `logctl tail -n 10` has
// answered 3 times meanwhile. Then:
//   - the ring holds every datagram, once, in order per sender, with
//     contiguous sequence numbers;
//   - every logctl run, during the flood and after it, printed the 10
//     latest records: 10 consecutive sequence numbers ending at the head it
//     saw (after the flood: exactly the last 10 stored);
//   - the daemon's metrics count exactly the connections made, but for
//     the half-open ones, which the kernel holds until they send something
//     (TCP_DEFER_ACCEPT) and so never reach the server while the test
//     needs them not to, none refused busy, 4 running follows, and, once
//     the half-open ones are closed, the 104 still open;
//   - on SIGTERM every idle connection is told X shutdown, each stalled
//     follower, reading at last, receives every record from the first up
//     to the cursor of its E shutdown, without loss, and the daemon exits 0.
//
// The daemon runs with its default limits (handshake timeout 10 s, idle 5
// min, write 30 s): the test relies on none of them firing, nor on them not
// firing, except that the first count of open connections is taken right
// after they were opened. pkg/query's TestHandshakeTimeout and
// TestSlowlorisDropped show the handshake timeout dropping such clients.
func TestQueryAbuse(t *testing.T) {
	const (
		halfOpen    = 25
		slowloris   = 25
		idle        = 100
		stalled     = 4
		senders     = 4
		perSender   = 12_500 // at least; 50,000 in all
		duringTails = 3      // logctl answers while the senders send
	)
	dir := t.TempDir()
	proctest.Logctl(t) // built now, not while the senders flood the ring
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{RingSize: "64MiB", QueryAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", Args: argsAnonymousAll})
	addr, metrics := d.QueryAddr, d.MetricsAddr
	r := openRing(t, d.Ring)

	// Half-open and slowloris connections first: the hello replies to the
	// idle ones and the followers, opened after them, show that the server
	// has accepted them all (it accepts in the order they connected).
	var quiet []net.Conn // half-open and slowloris
	for i := range halfOpen + slowloris {
		nc := dialQuery(t, addr, 0)
		if i >= halfOpen {
			// A hello frame announcing the largest body a client may send,
			// and the first bytes of it.
			frame := binary.LittleEndian.AppendUint32(nil, query.MaxClientFrame)
			frame = append(frame, byte(query.FrameHello))
			if _, err := nc.Write(append(frame, `{"protocol":1,"cl`...)); err != nil {
				t.Fatal(err)
			}
		}
		quiet = append(quiet, nc)
	}
	idlers := make([]*rawClient, idle)
	for i := range idlers {
		idlers[i] = helloRaw(t, dialQuery(t, addr, 0), "idle")
	}
	followers := make([]*rawClient, stalled)
	for i := range followers {
		followers[i] = helloRaw(t, dialQuery(t, addr, 4096), "stalled")
		if _, err := followers[i].nc.Write(query.AppendFrame(nil, query.FrameQuery, []byte(`{"follow":true,"after":0}`))); err != nil {
			t.Fatal(err)
		}
	}
	const opened = halfOpen + slowloris + idle + stalled
	const accepted = opened - halfOpen // silent ones wait in the kernel
	m := scrapeMetrics(t, metrics)
	if got := m["collectord_query_connections"]; got != accepted {
		t.Errorf("collectord_query_connections = %v after opening %d connections, %d of them silent: want %d", got, opened, halfOpen, accepted)
	}

	// The flood, and logctl meanwhile.
	answered := make(chan struct{}) // closed after duringTails answers
	load := make([]*sender, senders)
	var wg sync.WaitGroup
	for i := range load {
		s := &sender{id: i, blocking: true}
		load[i] = s
		c := proctest.DialDatagram(t, d.Socket)
		wg.Go(func() {
			var buf []byte
			for n := uint64(0); ; n++ {
				if n >= perSender {
					select {
					case <-answered:
						return
					default:
					}
				}
				buf = fmt.Appendf(buf[:0], "<14>%s: s=%d n=%d", loadTag, s.id, n)
				c.SetWriteDeadline(time.Now().Add(sendTimeout))
				if _, err := c.Write(buf); err != nil {
					s.err = fmt.Errorf("sender %d, datagram %d: %w", s.id, n, err)
					return
				}
				s.sent = append(s.sent, n)
			}
		})
	}
	tails := 0
	waitStored(t, r, shmring.FirstSeq+9) // logctl must find 10 records
	for ; tails < duringTails; tails++ {
		before := r.Head()
		seqs, _ := tailLatest(t, addr, 10)
		after := r.Head()
		if last := seqs[len(seqs)-1]; last < before-1 || last > after-1 {
			t.Errorf("logctl tail during the flood printed up to record %d; the head was %d before and %d after", last, before, after)
		}
	}
	close(answered)
	wg.Wait()
	sent := 0
	for _, s := range load {
		if s.err != nil {
			t.Fatal(s.err)
		}
		sent += len(s.sent)
	}
	t.Logf("%d datagrams sent by %d senders while logctl answered %d times", sent, senders, duringTails)

	// Everything is stored.
	marker := drain(t, r, d.Socket)
	recs := proctest.ReadRing(t, d.Ring)
	if want := uint64(shmring.FirstSeq + sent); marker != want || len(recs) != sent+1 {
		t.Fatalf("the ring holds %d records, the drain marker at %d; want %d and %d", len(recs), marker, sent+1, want)
	}
	for i, rec := range recs {
		if rec.Seq != shmring.FirstSeq+uint64(i) {
			t.Fatalf("record #%d has seq %d: not contiguous", i, rec.Seq)
		}
	}
	checkStored(t, recs, load)

	// After the flood, the latest 10 are exactly the last 10 stored.
	seqs, msgs := tailLatest(t, addr, 10)
	tails++
	for i, want := range recs[len(recs)-10:] {
		if seqs[i] != want.Seq || msgs[i] != string(want.Message) {
			t.Errorf("logctl tail after the flood printed record %d %q as #%d, want %d %q", seqs[i], msgs[i], i, want.Seq, want.Message)
		}
	}

	// Each stalled follower has records waiting in its receive queue: its
	// follow is running and the server writes to it.
	var queued []int
	for i, f := range followers {
		q := f.peekQueued(t)
		if q == 0 {
			t.Errorf("stalled follower %d: nothing in its receive queue", i)
		}
		queued = append(queued, q)
	}
	t.Logf("bytes waiting in the stalled followers' receive queues: %v", queued)
	m = scrapeMetrics(t, metrics)
	// A half-open connection still silent after the kernel's deferral
	// (10 s) is handed over after all: a slow run may count some.
	if got, least := m["collectord_query_connections_total"], float64(accepted+tails); got < least || got > least+halfOpen {
		t.Errorf("collectord_query_connections_total = %v, want %v (and at most %d more)", got, least, halfOpen)
	}
	for name, want := range map[string]float64{
		"collectord_query_connections_rejected_total": 0,
		"collectord_query_followers":                  stalled,
	} {
		if got := m[name]; got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if anon, err := rssAnonKiB(d.PID()); err == nil {
		t.Logf("daemon RssAnon with %d connections held: %d KiB (race detector: %v)", opened, anon, proctest.Race)
	}
	for _, nc := range quiet {
		nc.Close()
	}
	waitMetric(t, metrics, "collectord_query_connections", idle+stalled)

	// SIGTERM with the idle connections and stalled followers still there:
	// each idle one is told X shutdown; each follower, reading now, gets
	// every record up to its end cursor; the daemon exits 0.
	sigterm := time.Now()
	d.Signal(t, syscall.SIGTERM)
	var clients sync.WaitGroup
	problems := make(chan string, idle+stalled)
	for i, c := range idlers {
		clients.Go(func() {
			if err := c.expectShutdown(); err != nil {
				problems <- fmt.Sprintf("idle connection %d: %v", i, err)
			}
		})
	}
	for i, f := range followers {
		clients.Go(func() {
			if err := f.drainFollow(); err != nil {
				problems <- fmt.Sprintf("stalled follower %d: %v", i, err)
			}
		})
	}
	clients.Wait()
	close(problems)
	for p := range problems {
		t.Error(p)
	}
	select {
	case <-d.Done():
		if err := d.Err(); err != nil {
			t.Fatalf("collectord exited with %v\n%s", err, d.Logs)
		}
		t.Logf("collectord exited 0, %v after SIGTERM", time.Since(sigterm).Round(time.Millisecond))
	case <-time.After(restartTimeout):
		t.Fatalf("collectord did not exit within %v of SIGTERM\n%s", restartTimeout, d.Logs)
	}
}

// dialQuery connects to the query server; rcvbuf > 0 sets SO_RCVBUF first.
func dialQuery(t *testing.T, addr string, rcvbuf int) net.Conn {
	t.Helper()
	var d net.Dialer
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf) })
			return errors.Join(err, serr)
		}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// rawClient is a query connection spoken to frame by frame.
type rawClient struct {
	nc net.Conn
	fr *query.FrameReader
}

// helloRaw says hello on nc and requires the server's reply.
func helloRaw(t *testing.T, nc net.Conn, client string) *rawClient {
	t.Helper()
	c := &rawClient{nc: nc, fr: query.NewFrameReader(bufio.NewReader(nc), query.MaxServerFrame)}
	if _, err := nc.Write(query.AppendFrame(nil, query.FrameHello, fmt.Appendf(nil, `{"protocol":1,"client":%q}`, client))); err != nil {
		t.Fatal(err)
	}
	typ, body, err := c.next()
	if err != nil || typ != query.FrameWelcome {
		t.Fatalf("hello answered %s %s, %v", typ, body, err)
	}
	return c
}

func (c *rawClient) next() (query.FrameType, []byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(restartTimeout))
	return c.fr.Next()
}

// peekQueued waits until the connection has something to read, without
// reading it, and returns how many bytes wait in its receive queue.
func (c *rawClient) peekQueued(t *testing.T) int {
	t.Helper()
	rc, err := c.nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	c.nc.SetReadDeadline(time.Now().Add(restartTimeout))
	var b [1]byte
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		_, _, rerr = unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return !errors.Is(rerr, unix.EAGAIN)
	})
	if err := errors.Join(err, rerr); err != nil {
		t.Fatalf("waiting for data: %v", err)
	}
	var queued int
	if err := rc.Control(func(fd uintptr) { queued, rerr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || rerr != nil {
		t.Fatalf("SIOCINQ: %v %v", err, rerr)
	}
	return queued
}

// expectShutdown requires X shutdown, then the server closing.
func (c *rawClient) expectShutdown() error {
	defer c.nc.Close()
	typ, body, err := c.next()
	if err != nil {
		return fmt.Errorf("want X shutdown, got %w", err)
	}
	if typ != query.FrameError {
		return fmt.Errorf("want X shutdown, got %s %s", typ, body)
	}
	if xe, err := query.DecodeError(body); err != nil || xe.Code != query.CodeShutdown {
		return fmt.Errorf("want X shutdown, got X %s (%v)", body, err)
	}
	return c.expectEOF()
}

func (c *rawClient) expectEOF() error {
	if typ, body, err := c.next(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("want the server to close the connection, got %s %s %v", typ, body, err)
	}
	return nil
}

// drainFollow reads the rest of a follow of everything that the server is
// ending for shutdown: batches holding every record from the first on, no
// loss, E shutdown whose cursor is the last record received, then (X
// shutdown and) the server closing.
func (c *rawClient) drainFollow() error {
	defer c.nc.Close()
	next := uint64(shmring.FirstSeq)
	for {
		typ, body, err := c.next()
		if err != nil {
			return fmt.Errorf("after record %d: %w", next-1, err)
		}
		switch typ {
		case query.FrameBatch:
			b, err := query.ParseBatch(body)
			if err != nil {
				return err
			}
			for rec, ok := b.Next(); ok; rec, ok = b.Next() {
				if rec.Seq != next {
					return fmt.Errorf("record %d after %d", rec.Seq, next-1)
				}
				next++
			}
		case query.FramePing:
		case query.FrameEnd:
			end, err := query.DecodeEnd(body)
			if err != nil {
				return err
			}
			if end.Reason != query.ReasonShutdown || end.Cursor != next-1 {
				return fmt.Errorf("end %+v after record %d, want reason shutdown and that cursor", end, next-1)
			}
			typ, body, err := c.next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil || typ != query.FrameError {
				return fmt.Errorf("after E: %s %s %v", typ, body, err)
			}
			if xe, err := query.DecodeError(body); err != nil || xe.Code != query.CodeShutdown {
				return fmt.Errorf("after E: X %s (%v)", body, err)
			}
			return c.expectEOF()
		default:
			return fmt.Errorf("unexpected %s %s after record %d", typ, body, next-1)
		}
	}
}

// tailLatest runs `logctl tail -n n -o json` and requires n records with
// consecutive sequence numbers, each a load datagram or drain's marker; it
// returns their sequence numbers and messages.
func tailLatest(t *testing.T, addr string, n int) (seqs []uint64, msgs []string) {
	t.Helper()
	cmd := exec.Command(proctest.Logctl(t), "tail", "-n", strconv.Itoa(n), "-o", "json", "--addr", addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("logctl tail -n %d: %v\n%s", n, err, stderr.String())
	}
	for line := range strings.Lines(string(out)) {
		var rec struct {
			Seq     uint64 `json:"seq"`
			Tag     string `json:"tag"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("logctl tail: line %q: %v", line, err)
		}
		if (rec.Tag != loadTag || !strings.HasPrefix(rec.Message, "s=")) && rec.Tag != drainTag {
			t.Errorf("logctl tail: record %d is %s: %q, not a load datagram", rec.Seq, rec.Tag, rec.Message)
		}
		seqs = append(seqs, rec.Seq)
		msgs = append(msgs, rec.Message)
	}
	if len(seqs) != n {
		t.Fatalf("logctl tail -n %d printed %d records:\n%s\nstderr: %s", n, len(seqs), out, stderr.String())
	}
	for i := 1; i < n; i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("logctl tail -n %d printed records %v: not the latest %d", n, seqs, n)
		}
	}
	return seqs, msgs
}

// scrapeMetrics returns the unlabelled samples of the daemon's /metrics.
func scrapeMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	client := http.Client{Timeout: restartTimeout}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	m := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		name, value, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			m[name] = v
		}
	}
	return m
}

// waitMetric polls /metrics until name has the value want: the server
// counts a connection closed when its goroutine has noticed, and there is
// no event to wait on from outside the process.
func waitMetric(t *testing.T, addr, name string, want float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got := scrapeMetrics(t, addr)[name]
		if got == want {
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s = %v after %v, want %v", name, got, restartTimeout, want)
		}
	}
}

// rssAnonKiB returns a process's private resident memory.
func rssAnonKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, errors.New("no RssAnon")
}
