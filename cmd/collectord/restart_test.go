package main

// Restarts without loss (DESIGN.md): the daemon is upgraded in place
// (SIGHUP) or restarted while applications keep logging, clients keep
// connecting and a follower keeps tailing, and nothing may be lost,
// duplicated, reordered or refused. This file holds the upgrade tests and
// the load, follower and probe helpers that activate_test.go and
// notify_test.go share.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// The load the restart tests run through the daemon.
const (
	loadTag = "load"
	// loadRate is each sender's steady rate, datagrams per second.
	loadRate = 2000
	// sendTimeout bounds one blocking send: a daemon that stopped reading
	// for good fails the test instead of hanging it.
	sendTimeout = 30 * time.Second
	// probeEvery is how often the prober opens a query connection.
	probeEvery = 5 * time.Millisecond
	// restartTimeout bounds each wait for a daemon to start, hand over or
	// exit, and for a follower to catch up.
	restartTimeout = 60 * time.Second
)

// TestUpgradeUnderLoad: 20 consecutive in-place upgrades while blocking
// senders log at a steady rate, a prober opens query connections
// continuously and logctl follows. Every datagram of the blocking senders
// is stored exactly once and in order, no connection is refused, the
// follower prints every record exactly once and reports no loss, and every
// old process exits 0. A non-blocking sender shows what EAGAIN costs a
// client that does not wait (reported, not asserted: max_dgram_qlen is 10).
func TestUpgradeUnderLoad(t *testing.T) {
	const upgrades = 20
	dir := t.TempDir()
	becomeSubreaper(t)
	pidFile := filepath.Join(dir, "collectord.pid")
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{RingSize: "64MiB", QueryAddr: "127.0.0.1:0", Args: append([]string{"--pid-file", pidFile}, argsAnonymousAll...)})
	g := trackGenerations(t, d, pidFile)
	addr := d.QueryAddr
	ring := openRing(t, d.Ring)

	f := startFollower(t, addr)
	p := startProber(addr)
	l := startLoad(t, d.Socket, 3, 1)
	f.waitSeq(t, 500)

	var took []time.Duration
	for range upgrades {
		start := time.Now()
		g.upgrade(t)
		took = append(took, time.Since(start))
		// Each generation must ingest and serve the follower before the
		// next upgrade: wait for records it stored to reach logctl.
		f.waitSeq(t, ring.Head()+300)
	}

	l.stop(t)
	p.stop()
	f.waitSeq(t, drain(t, ring, d.Socket))
	f.stop(t)
	g.stop(t)

	recs := proctest.ReadRing(t, d.Ring)
	checkStored(t, recs, l.senders)
	f.check(t, recs)
	p.check(t)
	slices.Sort(took)
	t.Logf("%d upgrades under %d datagrams/s: SIGHUP to old process gone p50 %v, max %v; handoff gaps %s",
		upgrades, 3*loadRate, took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond),
		handoffGaps(d.Logs.String()))
	l.report(t)
	p.report(t)
	t.Logf("follower: printed %d records", len(f.seqs))
}

// TestUpgradeFailureKeepsServing: an upgrade whose new process fails to
// initialise (its configuration became invalid) leaves the old process
// serving: it says so, keeps ingesting, keeps the pid file, and reaps the
// failed process. Once the configuration is fixed the next SIGHUP upgrades,
// and the upgraded process removes the socket file when it stops.
func TestUpgradeFailureKeepsServing(t *testing.T) {
	dir := t.TempDir()
	becomeSubreaper(t)
	pidFile := filepath.Join(dir, "collectord.pid")
	config := filepath.Join(dir, "collectord.toml")
	writeFile(t, config, "batch = 32\n")
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{Args: []string{"--config", config, "--pid-file", pidFile}})
	g := trackGenerations(t, d, pidFile)
	ring := openRing(t, d.Ring)
	conn := proctest.DialDatagram(t, d.Socket)

	send := func(msg string) {
		t.Helper()
		head := ring.Head()
		if _, err := conn.Write([]byte("<14>upgrade-test: " + msg)); err != nil {
			t.Fatal(err)
		}
		waitStored(t, ring, head)
	}
	send("before")

	writeFile(t, config, "batch = 5000\n") // out of range: the new process exits 2
	old := g.current()
	syscall.Kill(old, syscall.SIGHUP)
	logs := d.Logs.WaitFor(t, `"upgrade failed; still serving"`, func(s string) bool {
		return len(logEvents(s, "upgrade failed; still serving")) > 0
	})
	failed := logEvents(logs, "upgrade failed; still serving")[0]
	reason, _ := failed["err"].(string)
	if !strings.Contains(reason, "exit status 2") {
		t.Errorf("upgrade failure reason %q does not give the new process's exit status 2", reason)
	}
	if !strings.Contains(logs, "batch 5000") {
		t.Errorf("the new process did not say what was wrong with the config:\n%s", logs)
	}
	var failedPID int
	_, afterPID, _ := strings.Cut(reason, "new process ")
	if _, err := fmt.Sscanf(afterPID, "%d", &failedPID); err != nil {
		t.Errorf("no pid in %q", reason)
	} else if _, err := os.Stat(fmt.Sprintf("/proc/%d", failedPID)); !os.IsNotExist(err) {
		t.Errorf("failed new process %d was not reaped: /proc entry: %v", failedPID, err)
	}
	if got := readPIDFile(t, pidFile); got != old {
		t.Errorf("pid file says %d after a failed upgrade, want the old process %d", got, old)
	}
	if err := syscall.Kill(old, 0); err != nil {
		t.Fatalf("old process %d is gone after a failed upgrade: %v", old, err)
	}
	send("after failed upgrade")

	writeFile(t, config, "batch = 16\n")
	g.upgrade(t)
	send("after upgrade")
	g.stop(t)
	// The first process bound the socket; the last one, stopping cleanly,
	// removes its file as a daemon that was never upgraded does.
	if _, err := os.Lstat(d.Socket); !os.IsNotExist(err) {
		t.Errorf("socket file left after the upgraded daemon stopped cleanly: %v", err)
	}

	var got []string
	for _, r := range proctest.ReadRing(t, d.Ring) {
		got = append(got, string(r.Message))
	}
	if want := []string{"before", "after failed upgrade", "after upgrade"}; !slices.Equal(got, want) {
		t.Fatalf("ring holds %q, want %q", got, want)
	}
}

// ---------------------------------------------------------------------------
// Daemon generations: an upgraded daemon is no longer the test's child.

// generations follows a daemon started with --pid-file through upgrades.
type generations struct {
	d       *proctest.Daemon
	pidFile string
	pids    []int // every serving process so far, oldest first
}

// trackGenerations starts following d, which serves already, and kills
// every generation still alive when the test ends.
func trackGenerations(t *testing.T, d *proctest.Daemon, pidFile string) *generations {
	t.Helper()
	g := &generations{d: d, pidFile: pidFile, pids: []int{d.PID()}}
	if got := readPIDFile(t, pidFile); got != d.PID() {
		t.Fatalf("pid file says %d, want %d", got, d.PID())
	}
	t.Cleanup(func() {
		for _, pid := range g.pids[1:] {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return g
}

func (g *generations) current() int { return g.pids[len(g.pids)-1] }

// upgrade sends SIGHUP to the serving process and waits until the new
// process serves and has written the pid file, and the old one has exited
// with status 0. It returns the new pid.
func (g *generations) upgrade(t *testing.T) int {
	t.Helper()
	return g.awaitUpgrade(t, g.startUpgrade(t))
}

// pendingUpgrade is an upgrade startUpgrade started.
type pendingUpgrade struct {
	old, readyBefore, failedBefore int
}

// startUpgrade sends SIGHUP to the serving process; awaitUpgrade waits
// for the upgrade, as upgrade does.
func (g *generations) startUpgrade(t *testing.T) pendingUpgrade {
	t.Helper()
	u := pendingUpgrade{
		old:          g.current(),
		readyBefore:  len(logEvents(g.d.Logs.String(), "collectord ready")),
		failedBefore: len(logEvents(g.d.Logs.String(), "upgrade failed; still serving")),
	}
	if err := syscall.Kill(u.old, syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP %d: %v", u.old, err)
	}
	return u
}

func (g *generations) awaitUpgrade(t *testing.T, u pendingUpgrade) int {
	t.Helper()
	old, readyBefore, failedBefore := u.old, u.readyBefore, u.failedBefore
	logs := g.d.Logs.WaitFor(t, fmt.Sprintf("the upgrade of %d", old), func(s string) bool {
		return len(logEvents(s, "collectord ready")) > readyBefore ||
			len(logEvents(s, "upgrade failed; still serving")) > failedBefore
	})
	if len(logEvents(logs, "upgrade failed; still serving")) > failedBefore {
		t.Fatalf("upgrade of %d failed:\n%s", old, logs)
	}
	ready := logEvents(logs, "collectord ready")
	pid := intField(t, ready[len(ready)-1], "pid")
	if pid == old || slices.Contains(g.pids, pid) {
		t.Fatalf("after SIGHUP to %d the ready process is %d", old, pid)
	}
	// The old process logs the handover concurrently with the new one's
	// "ready": wait for its line too.
	g.d.Logs.WaitFor(t, fmt.Sprintf("process %d to say it handed over to %d", old, pid), func(s string) bool {
		for _, e := range logEvents(s, "upgrade: handed over") {
			if intField(t, e, "new_pid") == pid {
				return true
			}
		}
		return false
	})
	if got := readPIDFile(t, g.pidFile); got != pid {
		t.Fatalf("pid file says %d after the upgrade to %d", got, pid)
	}
	g.pids = append(g.pids, pid)
	g.waitGone(t, old)
	return pid
}

// stop sends SIGTERM to the serving process and waits until every
// generation has exited with status 0 (the first one is exec.Cmd's child;
// its output pipe closes when the last generation exits).
func (g *generations) stop(t *testing.T) {
	t.Helper()
	pid := g.current()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM %d: %v", pid, err)
	}
	g.waitGone(t, pid)
	select {
	case <-g.d.Done():
		if err := g.d.Err(); err != nil {
			t.Fatalf("first collectord process exited with %v\n%s", err, g.d.Logs)
		}
	case <-time.After(restartTimeout):
		t.Fatalf("collectord's stderr stayed open after every generation exited\n%s", g.d.Logs)
	}
}

// waitGone waits until pid has exited and, unless it is the first
// generation (reaped by exec.Cmd), reaps it and requires exit status 0.
func (g *generations) waitGone(t *testing.T, pid int) {
	t.Helper()
	waitExited(t, pid, restartTimeout)
	if pid == g.pids[0] {
		return
	}
	var ws unix.WaitStatus
	got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	switch {
	case err == unix.ECHILD:
		t.Logf("process %d was not re-parented to the test; its exit status is unknown", pid)
	case err != nil:
		t.Fatalf("wait4 %d: %v", pid, err)
	case got != pid:
		t.Fatalf("wait4 %d: not exited although its pidfd said so", pid)
	case !ws.Exited() || ws.ExitStatus() != 0:
		t.Fatalf("collectord %d ended with wait status %#x (exit %d, signal %v)\n%s", pid, uint32(ws), ws.ExitStatus(), ws.Signal(), g.d.Logs)
	}
}

// becomeSubreaper makes the test process adopt orphaned descendants, as
// systemd adopts a service's processes: the old process of an upgrade
// exits and its successor becomes the test's child, whose exit status the
// test can then check.
func becomeSubreaper(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("PR_SET_CHILD_SUBREAPER: %v", err)
	}
	t.Cleanup(func() { unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
}

// waitExited waits, with a pidfd, until process pid has terminated.
func waitExited(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if err == unix.ESRCH {
		return // already reaped
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", pid, err)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(timeout)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(time.Until(deadline).Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd of %d: %v", pid, err)
		}
		if n == 0 {
			t.Fatalf("process %d did not exit within %v", pid, timeout)
		}
		return
	}
}

func readPIDFile(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSuffix(string(b), "\n"))
	if err != nil {
		t.Fatalf("pid file %s: %q", path, b)
	}
	return pid
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// The daemon's JSON log.

// logEvents returns the log lines whose msg is msg, decoded (numbers as
// json.Number, so nanosecond timestamps keep their precision). Lines that
// are not JSON (a failing process's plain message) are skipped.
func logEvents(logs, msg string) []map[string]any {
	var out []map[string]any
	needle := `"msg":` + strconv.Quote(msg)
	for line := range strings.Lines(logs) {
		if !strings.Contains(line, needle) {
			continue
		}
		dec := json.NewDecoder(strings.NewReader(line))
		dec.UseNumber()
		var e map[string]any
		if dec.Decode(&e) == nil && e["msg"] == msg {
			out = append(out, e)
		}
	}
	return out
}

func intField(t *testing.T, e map[string]any, key string) int {
	t.Helper()
	n, ok := e[key].(json.Number)
	if !ok {
		t.Fatalf("log line %v has no number %q", e, key)
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("log line %v: %q: %v", e, key, err)
	}
	return int(v)
}

// handoffGaps summarises, for the upgrades in logs, how long nobody read
// the datagram socket: from the old process's ingest_stopped_unix_ns to
// the new one's ingest_started_unix_ns.
func handoffGaps(logs string) string {
	started := map[int64]int64{} // pid -> ingest_started_unix_ns
	for _, e := range logEvents(logs, "upgrade complete: now serving") {
		pid, _ := e["pid"].(json.Number).Int64()
		ns, _ := e["ingest_started_unix_ns"].(json.Number).Int64()
		started[pid] = ns
	}
	var gaps []time.Duration
	for _, e := range logEvents(logs, "upgrade: handed over") {
		pid, _ := e["new_pid"].(json.Number).Int64()
		ns, _ := e["ingest_stopped_unix_ns"].(json.Number).Int64()
		if s, ok := started[pid]; ok {
			gaps = append(gaps, time.Duration(s-ns))
		}
	}
	if len(gaps) == 0 {
		return "(none)"
	}
	slices.Sort(gaps)
	return fmt.Sprintf("p50 %v, max %v (race detector: %v)", gaps[len(gaps)/2], gaps[len(gaps)-1], proctest.Race)
}

// ---------------------------------------------------------------------------
// The ring.

func openRing(t *testing.T, path string) *shmring.Reader {
	t.Helper()
	r, err := shmring.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// waitStored waits until the ring holds more than n records (its head has
// passed sequence number n), on the ring's futex.
func waitStored(t *testing.T, r *shmring.Reader, n uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
	defer cancel()
	if err := r.Wait(ctx, n); err != nil {
		t.Fatalf("waiting for record %d (head %d): %v", n, r.Head(), err)
	}
}

// drainTag marks the datagram drain sends.
const drainTag = "drain"

// drain sends a marker datagram after the load has stopped (every sender's
// datagrams are then queued ahead of it, or stored), waits until the
// daemon stored it, and returns its sequence number: everything sent before
// it is in the ring by then, or lost.
func drain(t *testing.T, r *shmring.Reader, socket string) uint64 {
	t.Helper()
	from := r.Head()
	c := proctest.DialDatagram(t, socket)
	if _, err := c.Write([]byte("<14>" + drainTag + ": end of load")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
	defer cancel()
	cur := r.Cursor(from)
	for {
		rec, _, err := cur.Next()
		if errors.Is(err, shmring.ErrNoRecord) {
			if err := r.Wait(ctx, cur.Pos()); err != nil {
				t.Fatalf("waiting for the drain marker (head %d): %v", r.Head(), err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		var e record.Entry
		if record.Decode(rec.Payload, &e) == nil && string(e.Tag) == drainTag {
			return rec.Seq
		}
	}
}

// ---------------------------------------------------------------------------
// Senders.

// sender sends "<14>load: s=ID n=N" datagrams, N = 0, 1, 2, ..., at
// a steady rate (loadRate per second unless the load says otherwise),
// each from its own connected socket as a separate application would. A
// blocking sender waits when the socket's queue is full (every datagram it
// sends must be stored); a non-blocking one drops the datagram on EAGAIN
// and counts it, as syslog(3) with LOG_NDELAY-style clients do.
type sender struct {
	id       int
	blocking bool
	rate     int    // datagrams per second
	count    uint64 // stop after this many; 0: until the load stops

	// Results, read after the sender's goroutine ended.
	sent   []uint64 // numbers the kernel accepted, in order
	eagain int      // datagrams dropped on EAGAIN (non-blocking only)
	err    error
}

type load struct {
	senders []*sender
	done    chan struct{}
	wg      sync.WaitGroup
}

// startLoad starts blocking and non-blocking senders on the datagram socket
// at path, each at loadRate.
func startLoad(t *testing.T, path string, blocking, nonBlocking int) *load {
	t.Helper()
	return startLoadWith(t, path, loadSpec{blocking: blocking, nonBlocking: nonBlocking})
}

// loadSpec says what senders startLoadWith starts.
type loadSpec struct {
	blocking, nonBlocking int
	rate                  int    // each sender's datagrams per second; 0: loadRate
	count                 uint64 // each sender stops after this many; 0: when the load stops
	// firstID numbers the senders from it: loads started one after the
	// other send distinct datagrams.
	firstID int
}

// startLoadWith starts the senders spec asks for on the datagram socket
// at path.
func startLoadWith(t *testing.T, path string, spec loadSpec) *load {
	t.Helper()
	l := &load{done: make(chan struct{})}
	for i := range spec.blocking + spec.nonBlocking {
		s := &sender{id: spec.firstID + i, blocking: i < spec.blocking, rate: cmp.Or(spec.rate, loadRate), count: spec.count}
		write, closeFn, err := s.open(path)
		if err != nil {
			t.Fatal(err)
		}
		l.senders = append(l.senders, s)
		l.wg.Go(func() {
			defer closeFn()
			s.run(write, l.done)
		})
	}
	t.Cleanup(func() { l.halt() })
	return l
}

func (s *sender) open(path string) (write func([]byte) error, closeFn func(), err error) {
	if s.blocking {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			return nil, nil, err
		}
		return func(b []byte) error {
			c.SetWriteDeadline(time.Now().Add(sendTimeout))
			_, err := c.Write(b)
			return err
		}, func() { c.Close() }, nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, nil, fmt.Errorf("connect %s: %w", path, err)
	}
	return func(b []byte) error {
		_, err := unix.Write(fd, b)
		return err
	}, func() { unix.Close(fd) }, nil
}

func (s *sender) run(write func([]byte) error, done <-chan struct{}) {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var n uint64
	var buf []byte
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		// Catch up to the steady rate after a send blocked.
		due := uint64(time.Since(start).Seconds() * float64(s.rate))
		if s.count > 0 {
			due = min(due, s.count)
		}
		for ; n < due; n++ {
			buf = fmt.Appendf(buf[:0], "<14>%s: s=%d n=%d", loadTag, s.id, n)
			err := write(buf)
			if !s.blocking && errors.Is(err, unix.EAGAIN) {
				s.eagain++
				continue
			}
			if err != nil {
				s.err = fmt.Errorf("sender %d, datagram %d: %w", s.id, n, err)
				return
			}
			s.sent = append(s.sent, n)
		}
		if s.count > 0 && n == s.count {
			return
		}
	}
}

func (l *load) halt() {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
}

// stop stops the senders and fails the test if one could not send.
func (l *load) stop(t *testing.T) {
	t.Helper()
	l.halt()
	l.check(t)
}

// wait waits until each sender has sent its count, and fails the test if
// one could not send.
func (l *load) wait(t *testing.T) {
	t.Helper()
	l.wg.Wait()
	l.check(t)
}

func (l *load) check(t *testing.T) {
	t.Helper()
	for _, s := range l.senders {
		if s.err != nil {
			t.Error(s.err)
		}
	}
}

func (l *load) report(t *testing.T) {
	t.Helper()
	for _, s := range l.senders {
		if s.blocking {
			t.Logf("blocking sender %d: %d datagrams sent", s.id, len(s.sent))
		} else {
			t.Logf("non-blocking sender %d: %d sent, %d dropped on EAGAIN (%.2f%%)", s.id, len(s.sent), s.eagain,
				100*float64(s.eagain)/float64(max(1, s.eagain+len(s.sent))))
		}
	}
}

// checkStored requires that the ring holds exactly what the senders sent:
// per sender every accepted datagram once, in the order sent, with the test
// process's kernel credentials, and nothing else but drain's marker, last.
func checkStored(t *testing.T, recs []proctest.Record, senders []*sender) {
	t.Helper()
	got := map[int][]uint64{}
	foreign := 0
	if len(recs) == 0 || string(recs[len(recs)-1].Tag) != drainTag {
		t.Errorf("the drain marker is not the last record")
	} else {
		recs = recs[:len(recs)-1]
	}
	for _, r := range recs {
		if string(r.Tag) != loadTag {
			foreign++
			continue
		}
		id, n, ok := parseLoadMessage(string(r.Message))
		if !ok {
			t.Errorf("record %d: message %q is not a sender's", r.Seq, r.Message)
			continue
		}
		if r.Flags&record.FlagCreds == 0 || r.PID != uint32(os.Getpid()) {
			t.Errorf("record %d: credentials %v pid %d, want the test's pid %d", r.Seq, r.Flags&record.FlagCreds != 0, r.PID, os.Getpid())
		}
		got[id] = append(got[id], n)
	}
	if foreign > 0 {
		t.Errorf("%d records in the ring were not sent by the load", foreign)
	}
	for _, s := range senders {
		if d := seqDiff(got[s.id], s.sent); d != "" {
			t.Errorf("sender %d (blocking %v): ring differs from what was sent: %s", s.id, s.blocking, d)
		}
	}
}

// parseLoadMessage parses a sender's message, "s=ID n=N" (by hand: the
// tests parse 100,000 of them under the race detector).
func parseLoadMessage(msg string) (id int, n uint64, ok bool) {
	idText, nText, ok := strings.Cut(msg, " ")
	idText, ok1 := strings.CutPrefix(idText, "s=")
	nText, ok2 := strings.CutPrefix(nText, "n=")
	id, err1 := strconv.Atoi(idText)
	n, err2 := strconv.ParseUint(nText, 10, 64)
	return id, n, ok && ok1 && ok2 && err1 == nil && err2 == nil
}

// seqDiff describes how got differs from want (both sequences of numbers):
// "" if equal.
func seqDiff(got, want []uint64) string {
	if slices.Equal(got, want) {
		return ""
	}
	seen := map[uint64]int{}
	dups, disorder := 0, 0
	for i, n := range got {
		seen[n]++
		if seen[n] == 2 {
			dups++
		}
		if i > 0 && n <= got[i-1] {
			disorder++
		}
	}
	missing := 0
	for _, n := range want {
		if seen[n] == 0 {
			missing++
		}
	}
	i := 0
	for i < min(len(got), len(want)) && got[i] == want[i] {
		i++
	}
	first := "at the end"
	if i < len(got) && i < len(want) {
		first = fmt.Sprintf("got %d, want %d", got[i], want[i])
	}
	return fmt.Sprintf("%d stored, %d sent: %d missing, %d duplicated, %d out of order; first difference at #%d (%s)",
		len(got), len(want), missing, dups, disorder, i, first)
}

// ---------------------------------------------------------------------------
// The follower: logctl tail -f, which must survive every restart.

type follower struct {
	cmd    *exec.Cmd
	stderr *proctest.Output
	exited chan error

	mu       sync.Mutex
	seqs     []uint64
	msgs     []string
	problems []string
	changed  chan struct{} // closed (and replaced) when seqs grows
}

// startFollower runs `logctl tail -f -o json --after-cursor 0`: every record
// from the first, then new ones, reconnecting and resuming across restarts.
func startFollower(t *testing.T, addr string) *follower {
	t.Helper()
	f := &follower{stderr: new(proctest.Output), exited: make(chan error, 1)}
	f.cmd = exec.Command(proctest.Logctl(t), "tail", "-f", "-o", "json", "--after-cursor", "0", "--addr", addr)
	f.cmd.Stderr = f.stderr
	stdout, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.cmd.Process.Kill() })
	go func() {
		lines := bufio.NewScanner(stdout)
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			f.line(lines.Bytes())
		}
		f.exited <- f.cmd.Wait()
	}()
	return f
}

func (f *follower) line(b []byte) {
	var r struct {
		Seq     uint64 `json:"seq"`
		Message string `json:"message"`
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := json.Unmarshal(b, &r); err != nil {
		f.problems = append(f.problems, fmt.Sprintf("line %q: %v", b, err))
		return
	}
	want := shmring.FirstSeq + uint64(len(f.seqs))
	if n := len(f.seqs); n > 0 {
		want = f.seqs[n-1] + 1
	}
	if r.Seq != want && len(f.problems) < 10 {
		f.problems = append(f.problems, fmt.Sprintf("record %d follows %d", r.Seq, want-1))
	}
	f.seqs = append(f.seqs, r.Seq)
	f.msgs = append(f.msgs, r.Message)
	if f.changed != nil {
		close(f.changed)
		f.changed = nil
	}
}

// waitSeq waits until the follower printed record seq (or a later one).
func (f *follower) waitSeq(t *testing.T, seq uint64) {
	t.Helper()
	deadline := time.NewTimer(restartTimeout)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		var last uint64
		if n := len(f.seqs); n > 0 {
			last = f.seqs[n-1]
		}
		if f.changed == nil {
			f.changed = make(chan struct{})
		}
		changed := f.changed
		f.mu.Unlock()
		if last >= seq {
			return
		}
		select {
		case <-changed:
		case err := <-f.exited:
			t.Fatalf("logctl exited (%v) at record %d, waiting for %d; stderr:\n%s", err, last, seq, f.stderr)
		case <-deadline.C:
			t.Fatalf("logctl printed up to record %d, not %d, within %v; stderr:\n%s", last, seq, restartTimeout, f.stderr)
		}
	}
}

// stop ends the follow (SIGTERM, as a user's ^C) and requires exit 0.
func (f *follower) stop(t *testing.T) {
	t.Helper()
	f.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-f.exited:
		if err != nil {
			t.Fatalf("logctl exited with %v; stderr:\n%s", err, f.stderr)
		}
	case <-time.After(restartTimeout):
		t.Fatalf("logctl did not exit on SIGTERM; stderr:\n%s", f.stderr)
	}
}

// check requires that the follower printed exactly the records in recs,
// each once, in order, with the same message, and reported no loss.
func (f *follower) check(t *testing.T, recs []proctest.Record) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.problems {
		t.Errorf("follower: %s", p)
	}
	if strings.Contains(f.stderr.String(), "lost") {
		t.Errorf("follower reported loss:\n%s", f.stderr)
	}
	want := make([]uint64, len(recs))
	for i, r := range recs {
		want[i] = r.Seq
	}
	if d := seqDiff(f.seqs, want); d != "" {
		t.Fatalf("follower printed other records than the ring holds: %s", d)
	}
	for i, r := range recs {
		if f.msgs[i] != string(r.Message) {
			t.Fatalf("follower printed record %d as %q, the ring holds %q", r.Seq, f.msgs[i], r.Message)
		}
	}
}

// ---------------------------------------------------------------------------
// The prober: a client connecting over and over while the daemon restarts.

type prober struct {
	addr string
	done chan struct{}
	wg   sync.WaitGroup

	ok, refused, redirected, failed atomic.Int64
	mu                              sync.Mutex
	errs                            []string
}

// startProber connects to the query server every probeEvery and says hello
// (query.Dial), counting how each attempt went. A hello answered "shutdown"
// (docs/PROTOCOL.md: a server that is stopping says so to connections
// still in the handshake) is retried at once, as logctl does; the retry
// must be greeted.
func startProber(addr string) *prober {
	p := &prober{addr: addr, done: make(chan struct{})}
	p.wg.Go(func() {
		tick := time.NewTicker(probeEvery)
		defer tick.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
			p.probe()
		}
	})
	return p
}

func (p *prober) probe() {
	ctx, cancel := context.WithTimeout(context.Background(), restartTimeout)
	defer cancel()
	for retry := false; ; retry = true {
		c, err := query.Dial(ctx, p.addr, query.DialOptions{Client: "probe"})
		var qe *query.Error
		switch {
		case err == nil:
			p.ok.Add(1)
			c.Close()
			return
		case errors.Is(err, syscall.ECONNREFUSED):
			p.refused.Add(1)
		case errors.As(err, &qe) && qe.Code == query.CodeShutdown && !retry:
			p.redirected.Add(1)
			continue
		default:
			p.failed.Add(1)
		}
		p.mu.Lock()
		if len(p.errs) < 5 {
			p.errs = append(p.errs, err.Error())
		}
		p.mu.Unlock()
		return
	}
}

func (p *prober) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

// check requires that every connection was accepted and greeted (after at
// most one "shutdown" answer): none refused, none failed otherwise.
func (p *prober) check(t *testing.T) {
	t.Helper()
	if p.ok.Load() == 0 || p.refused.Load()+p.failed.Load() > 0 {
		t.Errorf("query connections: %d greeted, %d refused, %d failed otherwise; first errors: %q",
			p.ok.Load(), p.refused.Load(), p.failed.Load(), p.errs)
	}
}

func (p *prober) report(t *testing.T) {
	t.Helper()
	t.Logf("query connections: %d greeted, %d refused, %d failed; %d hellos answered \"shutdown\" by a stopping process and greeted on the immediate retry",
		p.ok.Load(), p.refused.Load(), p.failed.Load(), p.redirected.Load())
}
