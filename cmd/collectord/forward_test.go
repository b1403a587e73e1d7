package main

// Forwarding to Kafka, end to end (DESIGN.md, "the cold path"): the real
// daemon with a [kafka] table, a real three-broker cluster (kfaked, franz-go's
// kfake as a process) that the tests freeze, kill and restart, blocking
// senders whose every datagram must reach the topic, and kcat, a consumer
// that is not ours, reading it. Each test checks the topic against the
// ring record by record: after dropping duplicates by seq, every record
// is there once, its value the JSON `logctl tail -o json` prints for it
// plus "host", its headers, key and timestamp right; and it reports what
// each disruption cost in duplicates.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/forward"
	"github.com/collectord/collectord/internal/kafkatest"
	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/shmring"
)

// maxBuffered is the [kafka] max_buffered of the tests that disrupt
// forwarding: the most records one disruption may send twice.
const maxBuffered = 1000

// TestForwardSteadyLoad: 100,000 datagrams from four blocking senders at a
// steady rate, forwarded with the defaults (zstd, key hostname, JSON):
// every one is on the topic exactly once.
func TestForwardSteadyLoad(t *testing.T) {
	const senders, each, rate = 4, 25_000, 5000
	k := kafkatest.Start(t, kafkatest.Options{})
	f := startForwarding(t, k.Brokers, "32MiB", nil)

	start := time.Now()
	l := startLoadWith(t, f.d.Socket, loadSpec{blocking: senders, rate: rate, count: each})
	l.wait(t)
	sending := time.Since(start)
	r := f.finish(t, k, l.senders, func() { f.d.Stop(t) })
	if r.dups != 0 {
		t.Errorf("%d duplicates without any disruption, want 0", r.dups)
	}
	t.Logf("%d records: sent in %v at %d/s, all acknowledged %v later; %d duplicates (race detector: %v)",
		r.last, sending.Round(time.Millisecond), senders*rate, r.caughtUp.Round(time.Millisecond), r.dups, proctest.Race)
}

// TestForwardClusterFrozen: the whole cluster stops answering (SIGSTOP)
// for 10 s under load, its connections open; once it runs again every
// record reaches the topic.
func TestForwardClusterFrozen(t *testing.T) {
	const outage = 10 * time.Second
	k := kafkatest.Start(t, kafkatest.Options{})
	f := startForwarding(t, k.Brokers, "16MiB", []string{`compression = "lz4"`, `key = "none"`, fmt.Sprintf("max_buffered = %d", maxBuffered)})
	l := startLoadWith(t, f.d.Socket, loadSpec{blocking: 2, rate: 500})
	waitStored(t, f.ring, 1000)

	k.Freeze(t)
	frozenAt := f.ring.Head()
	time.Sleep(outage) // the outage's length, not a wait for an event
	k.Thaw(t)
	thawedAt := f.ring.Head()
	waitStored(t, f.ring, thawedAt+1000)
	l.stop(t)
	r := f.finish(t, k, l.senders, func() { f.d.Stop(t) })
	if r.dups > maxBuffered {
		t.Errorf("%d duplicates after one freeze, want at most max_buffered %d", r.dups, maxBuffered)
	}
	t.Logf("cluster frozen %v while %d records were stored: %d records, %d duplicates, all acknowledged %v after the load ended; %s",
		outage, thawedAt-frozenAt, r.last, r.dups, r.caughtUp.Round(time.Millisecond), r.metrics)
}

// TestForwardClusterKilled: the cluster is killed (SIGKILL; with -sync it
// loses nothing it acknowledged) under load and started again on the same
// ports; every record reaches the topic.
func TestForwardClusterKilled(t *testing.T) {
	k := kafkatest.Start(t, kafkatest.Options{})
	f := startForwarding(t, k.Brokers, "16MiB", []string{`compression = "snappy"`, `key = "none"`, fmt.Sprintf("max_buffered = %d", maxBuffered)})
	l := startLoadWith(t, f.d.Socket, loadSpec{blocking: 2, rate: 2000})
	waitStored(t, f.ring, 4000)

	killedAt := f.ring.Head()
	down := time.Now()
	k.Kill(t)
	k.Restart(t)
	downFor := time.Since(down)
	waitStored(t, f.ring, f.ring.Head()+4000)
	l.stop(t)
	r := f.finish(t, k, l.senders, func() { f.d.Stop(t) })
	if r.dups > maxBuffered {
		t.Errorf("%d duplicates after one kill, want at most max_buffered %d", r.dups, maxBuffered)
	}
	t.Logf("cluster killed at record %d and listening again %v later: %d records, %d duplicates, all acknowledged %v after the load ended; %s",
		killedAt, downFor.Round(time.Millisecond), r.last, r.dups, r.caughtUp.Round(time.Millisecond), r.metrics)
}

// TestForwardDaemonKilled: collectord is killed (SIGKILL) ten times while
// records are in flight to the cluster, and started again each time on
// the same ring with the same configuration. Every other time its
// forwarder is killed with it, as systemd kills what is left of a crashed
// unit; otherwise the forwarder, its stdin closed, flushes and exits on
// its own. Before each kill the senders stop and everything they sent is
// stored, so that what is at stake is forwarding, not the datagrams the
// daemon was reading.
func TestForwardDaemonKilled(t *testing.T) {
	const kills, senders = 10, 2
	k := kafkatest.Start(t, kafkatest.Options{})
	f := startForwarding(t, k.Brokers, "16MiB", []string{`compression = "gzip"`, `key = "none"`, fmt.Sprintf("max_buffered = %d", maxBuffered)})
	var all []*sender
	type kill struct {
		withForwarder bool
		from, head    uint64 // the next forwarder started at from; head was the next seq at the kill
	}
	var killed []kill
	for i := range kills {
		l := startLoadWith(t, f.d.Socket, loadSpec{blocking: senders, rate: 1000, firstID: i * senders})
		waitStored(t, f.ring, f.ring.Head()+1000)
		l.stop(t)
		all = append(all, l.senders...)
		proctest.WaitHead(t, f.d.Ring, shmring.FirstSeq+sentCount(all))

		kl := kill{withForwarder: i%2 == 1, head: f.ring.Head()}
		if kl.withForwarder {
			fwd := forwarderPID(t, f.d.Logs, 1)
			if err := syscall.Kill(fwd, syscall.SIGKILL); err != nil {
				t.Fatalf("SIGKILL forwarder %d: %v", fwd, err)
			}
		}
		f.d.Signal(t, syscall.SIGKILL)
		<-f.d.Done() // and the forwarder, which shares its stderr
		f.restart(t)
		kl.from = forwardingFrom(t, f.d.Logs)
		if kl.from > kl.head {
			t.Errorf("kill %d: the new forwarder starts at record %d, after the last stored, %d", i, kl.from, kl.head-1)
		}
		killed = append(killed, kl)
	}
	l := startLoadWith(t, f.d.Socket, loadSpec{blocking: senders, rate: 1000, firstID: kills * senders, count: 500})
	l.wait(t)
	all = append(all, l.senders...)
	r := f.finish(t, k, all, func() { f.d.Stop(t) })
	// Each duplicate was sent again by the forwarder after the last kill
	// whose resumed range holds it.
	perKill := make([]int, kills)
	for _, seq := range duplicated(r.msgs) {
		for i := kills - 1; i >= 0; i-- {
			if killed[i].from <= seq && seq < killed[i].head {
				perKill[i]++
				break
			}
		}
	}
	var report []string
	for i, kl := range killed {
		what := "collectord"
		if kl.withForwarder {
			what = "collectord and its forwarder"
		}
		report = append(report, fmt.Sprintf("%s: %d not yet forwarded, %d sent twice", what, kl.head-kl.from, perKill[i]))
		switch {
		case !kl.withForwarder && perKill[i] > 0:
			t.Errorf("kill %d of collectord alone: %d duplicates; its forwarder, its stdin closed, should have flushed and recorded everything", i, perKill[i])
		case perKill[i] > maxBuffered:
			t.Errorf("kill %d: %d duplicates, more than max_buffered %d", i, perKill[i], maxBuffered)
		}
	}
	t.Logf("%d kills: %d records, %d duplicates; per kill: %s", kills, r.last, r.dups, strings.Join(report, "; "))
}

// TestForwardAcrossUpgrades: ten in-place upgrades (SIGHUP) while the
// senders go on: each generation's forwarder flushes and lets go of the
// cursor, the next one resumes after it, and every record reaches the
// topic.
func TestForwardAcrossUpgrades(t *testing.T) {
	const upgrades = 10
	becomeSubreaper(t)
	k := kafkatest.Start(t, kafkatest.Options{})
	pidFile := filepath.Join(t.TempDir(), "collectord.pid")
	f := startForwarding(t, k.Brokers, "16MiB", []string{`key = "none"`, fmt.Sprintf("max_buffered = %d", maxBuffered)}, "--pid-file", pidFile)
	g := trackGenerations(t, f.d, pidFile)
	l := startLoadWith(t, f.d.Socket, loadSpec{blocking: 2, rate: 1000})
	waitStored(t, f.ring, 1000)

	start := time.Now()
	for i := range upgrades {
		g.upgrade(t)
		// The new generation's forwarder took the cursor over and
		// forwards what the new generation stores.
		forwarderPID(t, f.d.Logs, i+2)
		waitStored(t, f.ring, f.ring.Head()+500)
	}
	took := time.Since(start)
	l.stop(t)
	r := f.finish(t, k, l.senders, func() { g.stop(t) })
	// Each forwarder flushes before the next one starts.
	if r.dups != 0 {
		t.Errorf("%d duplicates after %d upgrades, want 0", r.dups, upgrades)
	}
	t.Logf("%d upgrades in %v: %d records, %d duplicates", upgrades, took.Round(time.Millisecond), r.last, r.dups)
}

// TestForwardCountsRingLaps: the cluster is down long enough for a
// 256KiB ring to lap the forwarder. The records it overwrote before the
// brokers acknowledged them are counted exactly, in
// collectord_forward_lost_records_total and in the forwarder's log, which
// names each gap; every other record, before the outage and after the
// gap, is on the topic.
func TestForwardCountsRingLaps(t *testing.T) {
	k := kafkatest.Start(t, kafkatest.Options{})
	f := startForwarding(t, k.Brokers, "256KiB", []string{`key = "none"`, fmt.Sprintf("max_buffered = %d", maxBuffered)})
	var all []*sender
	send := func(spec loadSpec) {
		t.Helper()
		l := startLoadWith(t, f.d.Socket, spec)
		l.wait(t)
		all = append(all, l.senders...)
	}
	// Before the outage: forwarded, acknowledged and recorded in the
	// cursor, so that nothing is in flight when the cluster stops.
	send(loadSpec{blocking: 2, rate: 2000, count: 300})
	before := ringJSON(t, f.d.Ring)
	waitCursor(t, f.cursor, 600)
	k.Stop(t)

	// The outage: the forwarder finds the cluster down and closes its
	// client (once a probe has failed after that, the client is gone:
	// none of what it held can reach the cluster when it is back), and
	// the ring laps the forwarder's position.
	l := startLoadWith(t, f.d.Socket, loadSpec{blocking: 2, rate: 1000, firstID: 2})
	f.d.Logs.WaitFor(t, "the forwarder to find the cluster down and probe it", func(s string) bool {
		return len(logEvents(s, "Kafka failing: circuit breaker open; records not acknowledged will be sent again")) > 0 &&
			len(logEvents(s, "Kafka unreachable: circuit breaker open")) > 0
	})
	for f.ring.Stats().Oldest <= 600+1000 {
		waitStored(t, f.ring, f.ring.Head())
	}
	l.stop(t)
	all = append(all, l.senders...)
	proctest.WaitHead(t, f.d.Ring, shmring.FirstSeq+sentCount(all))
	outageEnd := f.ring.Stats()

	// The cluster is back: what the ring still holds is forwarded, and
	// so is everything sent after.
	k.Restart(t)
	k.Consume(t, 600+int(outageEnd.Head-outageEnd.Oldest))
	after := ringJSON(t, f.d.Ring) // before more records push these out
	send(loadSpec{blocking: 2, rate: 2000, count: 200, firstID: 4})
	last := drain(t, f.ring, f.d.Socket)
	msgs := k.Consume(t, 600+int(last+1-outageEnd.Oldest))
	metricLost := waitForwardMetric(t, f.d.MetricsAddr, "collectord_forward_acked_sequence", float64(last))["collectord_forward_lost_records_total"]
	logs := f.d.Logs.String()
	f.d.Stop(t)

	want := ringJSON(t, f.d.Ring)
	maps.Copy(want, before)
	maps.Copy(want, after)
	bySeq, _ := kafkatest.Dedupe(msgs)
	var undelivered []uint64
	for seq := uint64(shmring.FirstSeq); seq <= last; seq++ {
		if _, ok := bySeq[seq]; !ok {
			undelivered = append(undelivered, seq)
			delete(want, seq) // the ring may still hold the first ones
		}
	}
	dups := f.checkTopic(t, msgs, want)
	if dups > maxBuffered {
		t.Errorf("%d duplicates after one outage, want at most max_buffered %d", dups, maxBuffered)
	}
	// What never reached the topic is exactly what the forwarder says
	// it lost, in the gaps it logs.
	var gaps []uint64
	var loggedLost uint64
	for _, e := range logEvents(logs, "records lost: the ring overwrote them before they were forwarded") {
		first, resumed := uint64(intField(t, e, "first_seq")), uint64(intField(t, e, "resumed_at_seq"))
		loggedLost += uint64(intField(t, e, "lost"))
		for seq := first; seq < resumed; seq++ {
			gaps = append(gaps, seq)
		}
	}
	outside := slices.DeleteFunc(slices.Clone(undelivered), func(seq uint64) bool { _, ok := slices.BinarySearch(gaps, seq); return ok })
	if metricLost != float64(len(undelivered)) || loggedLost != uint64(len(undelivered)) || len(outside) > 0 {
		t.Errorf("%d records never reached the topic (%s); the forwarder counts %v lost, and logs %d lost in gaps %s",
			len(undelivered), ranges(undelivered), metricLost, loggedLost, ranges(gaps))
	}
	if len(undelivered) == 0 {
		t.Error("the ring did not lap the forwarder: the test tests nothing")
	}
	// Every datagram is either on the topic, once, or lost by the
	// forwarder: none was lost on its way into the ring.
	if got, want := last-shmring.FirstSeq, sentCount(all); got != want {
		t.Errorf("the ring stored %d datagrams before the drain marker, the senders sent %d", got, want)
	}
	t.Logf("a 256KiB ring lapped the forwarder while the cluster was down: %d records lost (%s), %d forwarded, %d duplicates",
		len(undelivered), ranges(undelivered), len(bySeq), dups)
}

// TestForwardBrokersUnreachableAtStart: brokers that do not answer when
// collectord starts do not stop it: ingest and queries work, the
// forwarder waits with its breaker open, and once a cluster listens on
// those ports every record is forwarded.
func TestForwardBrokersUnreachableAtStart(t *testing.T) {
	ports := kafkatest.FreePorts(t, 3)
	f := startForwarding(t, kafkatest.Addrs(ports), "4MiB", []string{`key = "uid"`, `format = "json"`})
	f.d.Logs.WaitFor(t, "the forwarder to find the brokers unreachable", func(s string) bool {
		return len(logEvents(s, "Kafka unreachable: circuit breaker open")) > 0
	})
	var msgs []string
	for i := range 50 {
		msgs = append(msgs, fmt.Sprintf("<14>early: record %d", i))
	}
	f.d.Send(t, msgs...)
	out, err := exec.Command(proctest.Logctl(t), "tail", "--addr", f.d.QueryAddr, "-n", "100", "-o", "json").Output()
	if err != nil {
		t.Fatalf("logctl tail while the brokers are unreachable: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n != 50 {
		t.Errorf("logctl tail printed %d records, want 50:\n%s", n, out)
	}
	// The metrics show the backlog, and a forwarder that runs.
	if m := waitForwardMetric(t, f.d.MetricsAddr, "collectord_forward_lag_records", 50); m["collectord_forward_up"] != 1 || m["collectord_forward_acked_sequence"] != 0 {
		t.Errorf("metrics while the brokers are unreachable: %v", m)
	}

	k := kafkatest.Start(t, kafkatest.Options{Ports: ports})
	last := f.d.Send(t, "<14>late: after the cluster came")
	got := k.Consume(t, int(last))
	f.d.Stop(t)
	if dups := f.checkTopic(t, got, ringJSON(t, f.d.Ring)); dups != 0 {
		t.Errorf("%d duplicates, want 0", dups)
	}
}

// TestForwarderStopsWhenItsReportsFail: a forwarder process whose
// reports (its stdout) have nowhere to go any more, because the daemon
// died, stops as it does when its stdin ends: it records its position,
// says so, and exits 0; it is not killed by SIGPIPE halfway.
func TestForwarderStopsWhenItsReportsFail(t *testing.T) {
	ring := filepath.Join(t.TempDir(), "ring")
	w, err := shmring.OpenWriter(ring, shmring.Options{Size: shmring.MinSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	cfg, err := json.Marshal(forward.Config{Ring: ring, Brokers: kafkatest.Addrs(kafkatest.FreePorts(t, 1)), Topic: kafkatest.DefaultTopic})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(proctest.Collectord(t), "forward")
	logs := new(proctest.Output)
	cmd.Stderr = logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	if _, err := stdin.Write(append(cfg, '\n')); err != nil {
		t.Fatal(err)
	}
	logs.WaitFor(t, "the forwarder to start", func(s string) bool { return len(logEvents(s, "forwarding")) > 0 })
	stdout.Close() // its next report, within a second, fails
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil || len(logEvents(logs.String(), "forwarder stopped")) != 1 {
			t.Errorf("forwarder exited with %v; want 0 after saying it stopped:\n%s", err, logs)
		}
	case <-time.After(proctest.Timeout):
		t.Fatalf("the forwarder still runs %v after its stdout closed:\n%s", proctest.Timeout, logs)
	}
}

// TestForwardConfigErrors: a [kafka] table collectord cannot use stops it
// at start with exit status 2 and a message naming the key.
func TestForwardConfigErrors(t *testing.T) {
	bin := proctest.Collectord(t)
	dir := t.TempDir()
	secret := filepath.Join(dir, "password")
	writeFile(t, secret, "hunter2\n")
	missing := filepath.Join(dir, "missing")
	const base = "[kafka]\nbrokers = [\"127.0.0.1:9092\"]\ntopic = \"logs\"\n"
	for _, tc := range []struct{ name, table, want string }{
		{"unknown key", base + "brokerz = [\"x:1\"]\n", "unknown key kafka.brokerz"},
		{"no brokers", "[kafka]\nbrokers = []\ntopic = \"logs\"\n", "kafka.brokers"},
		{"broker without port", "[kafka]\nbrokers = [\"kafka1\"]\ntopic = \"logs\"\n", `kafka.brokers "kafka1"`},
		{"broker port out of range", "[kafka]\nbrokers = [\"kafka1:99999\"]\ntopic = \"logs\"\n", `kafka.brokers "kafka1:99999"`},
		{"no topic", "[kafka]\nbrokers = [\"127.0.0.1:9092\"]\n", `kafka.topic ""`},
		{"bad topic", "[kafka]\nbrokers = [\"127.0.0.1:9092\"]\ntopic = \"log lines\"\n", `kafka.topic "log lines"`},
		{"compression", base + "compression = \"brotli\"\n", `kafka.compression "brotli"`},
		{"key", base + "key = \"pid\"\n", `kafka.key "pid"`},
		{"format", base + "format = \"xml\"\n", `kafka.format "xml"`},
		{"sasl without user", base + "sasl_mechanism = \"PLAIN\"\nsasl_password_file = \"" + secret + "\"\n", "sasl_user"},
		{"sasl user without mechanism", base + "sasl_user = \"me\"\n", "sasl_mechanism"},
		{"tls_cert without key", base + "tls_cert = \"" + secret + "\"\n", "kafka.tls_key"},
		{"missing tls_ca", base + "tls_ca = \"" + missing + "\"\n", "kafka.tls_ca"},
		{"missing password file", base + "sasl_mechanism = \"SCRAM-SHA-512\"\nsasl_user = \"me\"\nsasl_password_file = \"" + missing + "\"\n", "kafka.sasl_password_file"},
		{"relative cursor", base + "cursor = \"ring.cursor\"\n", `kafka.cursor "ring.cursor"`},
		{"max_buffered", base + "max_buffered = -1\n", "kafka.max_buffered -1"},
		{"linger", base + "linger = \"2m\"\n", "kafka.linger 2m0s"},
		{"yield_lag", base + "yield_lag = \"2h\"\n", "kafka.yield_lag 2h0m0s"},
		{"nice", base + "nice = 20\n", "kafka.nice 20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			config := filepath.Join(t.TempDir(), "collectord.toml")
			writeFile(t, config, tc.table)
			cmd := exec.Command(bin, "--config", config, "--socket", filepath.Join(dir, "c.sock"), "--ring", filepath.Join(dir, "ring"),
				"--query-addr", "", "--query-socket", "", "--metrics-addr", "")
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
				t.Errorf("%v, output %q; want exit status 2 and a message with %q", err, out, tc.want)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// The daemon with a [kafka] table.

// forwarding is a daemon forwarding its ring to a cluster.
type forwarding struct {
	d      *proctest.Daemon
	opts   proctest.DaemonOptions
	dir    string
	ring   *shmring.Reader
	cursor string // the forwarder's cursor file
	ringID string // as the query protocol gives it
	host   string
	key    string // the [kafka] key: how each record's key must read
}

// startForwarding starts collectord with a query and a metrics server and
// a config file whose [kafka] table names brokers, the topic
// kafkatest.DefaultTopic and the settings given (TOML lines), and more
// flags.
func startForwarding(t *testing.T, brokers []string, ringSize string, settings []string, flags ...string) *forwarding {
	t.Helper()
	var b strings.Builder
	b.WriteString("[kafka]\nbrokers = [")
	for i, br := range brokers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(br))
	}
	fmt.Fprintf(&b, "]\ntopic = %q\n", kafkatest.DefaultTopic)
	f := &forwarding{dir: t.TempDir(), key: "hostname"}
	for _, s := range settings {
		b.WriteString(s + "\n")
		if v, ok := strings.CutPrefix(s, "key = "); ok {
			f.key, _ = strconv.Unquote(v)
		}
	}
	config := filepath.Join(f.dir, "collectord.toml")
	writeFile(t, config, b.String())
	f.opts = proctest.DaemonOptions{RingSize: ringSize, QueryAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0",
		Args: append(append([]string{"--config", config}, argsAnonymousAll...), flags...)}
	f.d = proctest.StartDaemon(t, f.dir, f.opts)
	f.ring = openRing(t, f.d.Ring)
	f.cursor = f.d.Ring + forward.CursorSuffix
	var err error
	if f.host, err = os.Hostname(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), proctest.Timeout)
	defer cancel()
	c, err := query.Dial(ctx, f.d.QueryAddr, query.DialOptions{Client: "forward-test"})
	if err != nil {
		t.Fatal(err)
	}
	f.ringID = c.Hello().RingID
	c.Close()
	return f
}

// restart starts collectord again as it was started, after it exited.
func (f *forwarding) restart(t *testing.T) {
	t.Helper()
	f.d = proctest.StartDaemon(t, f.dir, f.opts)
}

// result is what a forwarding test measured once its load ended.
type result struct {
	last     uint64              // the drain marker: the ring holds records 1 to last
	msgs     []kafkatest.Message // the topic, duplicates included
	dups     int
	caughtUp time.Duration // from the drain marker stored to every record acknowledged
	metrics  string        // the forwarder's error counters, as scrapeForward says
}

// finish ends a test whose senders have stopped: it sends the drain
// marker, waits until the forwarder records every record as acknowledged,
// reads the topic with kcat, stops collectord with stop, and requires
// that the ring holds exactly what senders sent and the topic exactly
// what the ring holds (checkStored, checkTopic).
func (f *forwarding) finish(t *testing.T, k *kafkatest.Cluster, senders []*sender, stop func()) result {
	t.Helper()
	var r result
	r.last = drain(t, f.ring, f.d.Socket)
	start := time.Now()
	waitCursor(t, f.cursor, r.last)
	r.caughtUp = time.Since(start)
	r.msgs = k.Consume(t, int(r.last))
	r.metrics = scrapeForward(t, f.d.MetricsAddr)
	stop()
	checkStored(t, proctest.ReadRing(t, f.d.Ring), senders)
	r.dups = f.checkTopic(t, r.msgs, ringJSON(t, f.d.Ring))
	return r
}

// forwarderPID waits until the n-th forwarder process in logs says it
// forwards (it holds the cursor and has the ring open), and returns the
// pid of the latest one.
func forwarderPID(t *testing.T, logs *proctest.Output, n int) int {
	t.Helper()
	s := logs.WaitFor(t, fmt.Sprintf("forwarder %d to start forwarding", n), func(s string) bool {
		return len(logEvents(s, "forwarding")) >= n
	})
	evs := logEvents(s, "forwarding")
	return intField(t, evs[len(evs)-1], "pid")
}

// forwardingFrom waits until the forwarder in logs (a daemon's first)
// starts forwarding, and returns the seq it starts from.
func forwardingFrom(t *testing.T, logs *proctest.Output) uint64 {
	t.Helper()
	forwarderPID(t, logs, 1)
	return uint64(intField(t, logEvents(logs.String(), "forwarding")[0], "from_seq"))
}

// ringJSON returns what `logctl tail -o json` prints for each record the
// ring holds, by seq.
func ringJSON(t *testing.T, ring string) map[uint64]string {
	t.Helper()
	out, err := exec.Command(proctest.Logctl(t), "tail", "--ring", ring, "--after-cursor", "0", "-o", "json").Output()
	if err != nil {
		t.Fatalf("logctl tail --ring %s: %v", ring, err)
	}
	recs := map[uint64]string{}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimSuffix(line, "\n")
		seq, err := strconv.ParseUint(jsonMember(line, "seq"), 10, 64)
		if err != nil {
			t.Fatalf("logctl printed %q: %v", line, err)
		}
		recs[seq] = line
	}
	return recs
}

// checkTopic requires that msgs, the topic read from the beginning, hold
// each record of want (logctl's JSON by seq) and no other record: after
// dropping duplicates by seq, each once, its value want's JSON plus
// "host", its headers seq, ring_id and host in that order, its key as the
// [kafka] key says, and its timestamp the record's receive time. A
// duplicate must be the same record again. It returns the number of
// duplicates.
func (f *forwarding) checkTopic(t *testing.T, msgs []kafkatest.Message, want map[uint64]string) int {
	t.Helper()
	bySeq, dups := kafkatest.Dedupe(msgs)
	var missing, bad []uint64
	for seq, line := range want {
		m, ok := bySeq[seq]
		if !ok {
			missing = append(missing, seq)
			continue
		}
		if problem := f.checkMessage(m, seq, line); problem != "" {
			bad = append(bad, seq)
			if len(bad) <= 5 {
				t.Errorf("seq %d (partition %d offset %d): %s", seq, m.Partition, m.Offset, problem)
			}
		}
	}
	var extra []uint64
	for seq := range bySeq {
		if _, ok := want[seq]; !ok {
			extra = append(extra, seq)
		}
	}
	for _, m := range msgs {
		if first := bySeq[m.Seq]; !reflect.DeepEqual(m.Headers, first.Headers) || m.Payload != first.Payload || !reflect.DeepEqual(m.Key, first.Key) {
			t.Errorf("seq %d at partition %d offset %d differs from its first copy at partition %d offset %d", m.Seq, m.Partition, m.Offset, first.Partition, first.Offset)
			break
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing)+len(extra)+len(bad) > 0 {
		t.Errorf("topic against the ring's %d records: %d missing (%s), %d not in the ring (%s), %d wrong",
			len(want), len(missing), ranges(missing), len(extra), ranges(extra), len(bad))
	}
	return dups
}

// checkMessage describes how m differs from record seq, whose JSON
// logctl printed as line: "" if it does not.
func (f *forwarding) checkMessage(m kafkatest.Message, seq uint64, line string) string {
	wantValue := strings.TrimSuffix(line, "}") + `,"host":` + strconv.Quote(f.host) + "}"
	if m.Payload != wantValue && !sameJSONPlusHost(m.Payload, line, f.host) {
		return fmt.Sprintf("value\n%s\nwant logctl's JSON plus host\n%s", m.Payload, line)
	}
	wantHeaders := [][2]string{{"seq", strconv.FormatUint(seq, 10)}, {"ring_id", f.ringID}, {"host", f.host}}
	if !reflect.DeepEqual(m.Headers, wantHeaders) {
		return fmt.Sprintf("headers %q, want %q", m.Headers, wantHeaders)
	}
	received, err := time.Parse(time.RFC3339Nano, strings.Trim(jsonMember(line, "time"), `"`))
	if err != nil {
		return fmt.Sprintf("logctl's JSON %s: %v", line, err)
	}
	if m.Time.UnixMilli() != received.UnixMilli() {
		return fmt.Sprintf("timestamp %v, want the receive time %v in milliseconds", m.Time, received)
	}
	var wantKey *string
	switch f.key {
	case "hostname":
		wantKey = &f.host
	case "uid":
		if uid := jsonMember(line, "uid"); uid != "" {
			wantKey = &uid
		}
	}
	if !reflect.DeepEqual(m.Key, wantKey) {
		return fmt.Sprintf("key %v, want %v (key = %q)", keyText(m.Key), keyText(wantKey), f.key)
	}
	return ""
}

func keyText(s *string) string {
	if s == nil {
		return "none"
	}
	return strconv.Quote(*s)
}

// jsonMember returns the text of the value of the first member called
// name in the JSON object line, which logctl printed: a number, or a
// string (with its quotes) that holds no escaped quote. The members the
// tests look up (seq, time, uid) come before any nested object, and no
// string holds an unescaped quote, so the first `"name":` is the
// object's own. It returns "" when there is none. (The tests look up
// 100,000 records under the race detector: decoding each line would take
// seconds.)
func jsonMember(line, name string) string {
	_, v, ok := strings.Cut(line, `"`+name+`":`)
	if !ok {
		return ""
	}
	if strings.HasPrefix(v, `"`) {
		end := strings.IndexByte(v[1:], '"')
		if end < 0 {
			return ""
		}
		return v[:end+2]
	}
	end := strings.IndexAny(v, ",}")
	if end < 0 {
		return ""
	}
	return v[:end]
}

// sameJSONPlusHost reports whether value is the JSON object line plus a
// member "host": host, member order aside.
func sameJSONPlusHost(value, line, host string) bool {
	var got, want map[string]any
	if json.Unmarshal([]byte(value), &got) != nil || json.Unmarshal([]byte(line), &want) != nil {
		return false
	}
	want["host"] = host
	return reflect.DeepEqual(got, want)
}

// ranges writes sorted seqs as compact ranges: "1-5, 9".
func ranges(seqs []uint64) string {
	if len(seqs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := 0; i < len(seqs); {
		j := i
		for j+1 < len(seqs) && seqs[j+1] == seqs[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		if b.Len() > 200 {
			b.WriteString("...")
			break
		}
		if i == j {
			fmt.Fprintf(&b, "%d", seqs[i])
		} else {
			fmt.Fprintf(&b, "%d-%d", seqs[i], seqs[j])
		}
		i = j + 1
	}
	return b.String()
}

// duplicated returns the seqs that msgs hold more than once, each once.
func duplicated(msgs []kafkatest.Message) []uint64 {
	n := map[uint64]int{}
	var out []uint64
	for _, m := range msgs {
		if n[m.Seq]++; n[m.Seq] == 2 {
			out = append(out, m.Seq)
		}
	}
	return out
}

// sentCount returns how many datagrams the senders sent.
func sentCount(senders []*sender) uint64 {
	var n uint64
	for _, s := range senders {
		n += uint64(len(s.sent))
	}
	return n
}

// waitCursor waits until the forwarder's cursor file records seq or
// later: every record up to seq is acknowledged and will not be sent
// again. It wakes at each replacement of the file (inotify).
func waitCursor(t *testing.T, path string, seq uint64) {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(proctest.Timeout)
	buf := make([]byte, 4096)
	for {
		var got uint64
		if b, err := os.ReadFile(path); err == nil {
			for line := range strings.Lines(string(b)) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "seq="); ok {
					got, _ = strconv.ParseUint(v, 10, 64)
				}
			}
		}
		if got >= seq {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("the cursor file records seq %d after %v, want %d", got, proctest.Timeout, seq)
		}
		if _, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1); err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		for {
			if _, err := unix.Read(fd, buf); err != nil {
				break
			}
		}
	}
}

// scrapeForwardMetrics returns the daemon's collectord_forward_* samples
// (those with labels keyed with them, as exposed).
func scrapeForwardMetrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, "collectord_forward_") {
			continue
		}
		name, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m[name] = f
		}
	}
	return m
}

// waitForwardMetric scrapes the daemon's metrics until name is at least
// min, and returns the forward metrics then. The forwarder reports once a
// second and nothing announces it: this polls.
func waitForwardMetric(t *testing.T, addr, name string, min float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(proctest.Timeout)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		m := scrapeForwardMetrics(t, addr)
		if m[name] >= min {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v after %v, want at least %v", name, m[name], proctest.Timeout, min)
		}
		<-tick.C
	}
}

// scrapeForward summarises the forwarder's error counters and restarts.
func scrapeForward(t *testing.T, addr string) string {
	t.Helper()
	m := scrapeForwardMetrics(t, addr)
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(m)) {
		if (strings.HasPrefix(name, "collectord_forward_errors_total") || name == "collectord_forward_restarts_total") && m[name] > 0 {
			parts = append(parts, fmt.Sprintf("%s %v", strings.TrimPrefix(name, "collectord_forward_"), m[name]))
		}
	}
	if len(parts) == 0 {
		return "no forwarding errors counted"
	}
	return "counted " + strings.Join(parts, ", ")
}

// TestForwarderSharesCPU: the forwarder runs under SCHED_IDLE while it is
// less than yield_lag behind; once a frozen cluster leaves it further
// behind it runs at the configured nice under the normal policy, and
// back under SCHED_IDLE when it has caught up.
func TestForwarderSharesCPU(t *testing.T) {
	k := kafkatest.Start(t, kafkatest.Options{})
	f := startForwarding(t, k.Brokers, "16MiB", []string{`yield_lag = "1s"`, `nice = 7`})
	pid := forwarderPID(t, f.d.Logs, 1)
	if got := schedOf(t, pid); got != "idle" {
		t.Fatalf("caught up: the forwarder's threads are %s, want idle (SCHED_IDLE)", got)
	}
	k.Freeze(t)
	f.d.Send(t, "waiting for the cluster")
	f.d.Logs.WaitFor(t, "the forwarder to take its share of the CPU", func(s string) bool {
		return len(logEvents(s, "forwarding fell behind: taking its share of the CPU")) > 0
	})
	if got := schedOf(t, pid); got != "normal nice 7" {
		t.Errorf("1s behind: the forwarder's threads are %s, want normal nice 7", got)
	}
	k.Thaw(t)
	f.d.Logs.WaitFor(t, "the forwarder to yield again", func(s string) bool {
		return len(logEvents(s, "forwarding caught up: yielding the CPU to ingest")) > 0
	})
	if got := schedOf(t, pid); got != "idle" {
		t.Errorf("caught up again: the forwarder's threads are %s, want idle", got)
	}
	f.d.Stop(t)
}

// schedOf describes the scheduling of every thread of pid: "idle" when all
// are SCHED_IDLE, "normal nice N" when all are SCHED_OTHER at nice N,
// otherwise the mix.
func schedOf(t *testing.T, pid int) string {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		// Fields after the command's closing parenthesis: state is the
		// 3rd field of the line, nice the 19th, policy the 41st.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		nice, policy := fields[19-3], fields[41-3]
		switch policy {
		case "5":
			seen["idle"] = true
		case "0":
			seen["normal nice "+nice] = true
		default:
			seen["policy "+policy] = true
		}
	}
	var kinds []string
	for k := range seen {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return strings.Join(kinds, ", ")
}
