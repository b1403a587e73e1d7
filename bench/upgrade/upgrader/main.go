//go:build linux

// Command upgrader measures collectord's in-place upgrade. It runs the
// daemon under a light steady load (blocking senders, numbered datagrams),
// upgrades it again and again with SIGHUP, and reports for each upgrade:
//
//   - the handoff gap: how long no process read the datagram socket, from
//     the old process's ingest_stopped_unix_ns ("upgrade: handed over") to
//     the new one's ingest_started_unix_ns ("upgrade complete: now
//     serving"), both from the daemon's JSON log;
//   - the upgrade time: from SIGHUP to the pid file naming the new process
//     (watched with inotify, no polling).
//
// It also reports the longest a sender waited in one send(2), and checks,
// while the run goes on, that every datagram of the load is stored exactly
// once, in order, with kernel credentials: a reader follows the ring with
// a cursor (it must never be overtaken) until a final marker.
//
// What the old process has mapped matters: closing the ring unmaps every
// page that process touched, inside the gap. -fill says how much of the
// ring each generation writes before it is upgraded:
//
//   - each (default): 4 KiB datagrams until the ring has wrapped since the
//     generation started, so the old process has touched every page, as a
//     daemon that has run for a while has;
//   - once: the first generation fills the ring, later ones only carry the
//     load (short-lived generations, little mapped);
//   - none: a fresh ring and the load only.
//
// Between upgrades it waits until the new process has stored 50 ms of load
// and the old one has exited 0, so that each upgrade starts from steady
// state.
//
//	upgrader -collectord BIN -dir DIR [-upgrades 50] [-senders 2] [-rate 500]
//	         [-ring-size 64MiB] [-fill each|once|none] [-timeout 30s]
//
// It prints one line of JSON (see result) on stdout, the daemon's log goes
// to DIR/collectord.log, and it exits 1 if anything failed: an upgrade that
// did not complete, or a ring that does not hold exactly what was sent.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// result is what upgrader prints.
type result struct {
	Upgrades       int     `json:"upgrades"`
	RingSize       string  `json:"ring_size"`
	Fill           string  `json:"fill"`
	Qlen           int     `json:"max_dgram_qlen"`
	Senders        int     `json:"senders"`
	Rate           int     `json:"rate"` // datagrams per second, all senders
	GapP50us       float64 `json:"gap_p50_us"`
	GapP99us       float64 `json:"gap_p99_us"`
	GapMaxus       float64 `json:"gap_max_us"`
	UpgradeP50ms   float64 `json:"upgrade_p50_ms"`
	UpgradeP99ms   float64 `json:"upgrade_p99_ms"`
	UpgradeMaxms   float64 `json:"upgrade_max_ms"`
	SendBlockMaxms float64 `json:"send_block_max_ms"`
	Sent           uint64  `json:"sent"`
	Stored         uint64  `json:"stored"`
	Missing        uint64  `json:"missing"`
	Duplicates     uint64  `json:"duplicates"`
	OutOfOrder     uint64  `json:"out_of_order"`
	NoCreds        uint64  `json:"no_creds"`
	Overtaken      uint64  `json:"overtaken"` // records the checker lost to the writer (its own failure)
	OK             bool    `json:"ok"`
}

// The tags of the datagrams upgrader sends.
const (
	loadTag = "upgrade-bench" // "s=ID n=N", and the markers
	fillTag = "fill"
)

func main() {
	bin := flag.String("collectord", "", "collectord `binary` (required)")
	dir := flag.String("dir", "", "working `directory` for the socket, ring, pid file and log (required)")
	upgrades := flag.Int("upgrades", 50, "number of upgrades")
	senders := flag.Int("senders", 2, "blocking senders")
	rate := flag.Int("rate", 500, "datagrams per second per sender")
	ringSize := flag.String("ring-size", "64MiB", "ring size")
	fill := flag.String("fill", "each", "how much each generation writes before its upgrade: each, once, none")
	timeout := flag.Duration("timeout", 30*time.Second, "bound on each wait (start, upgrade, exit, ingest)")
	flag.Parse()
	if *bin == "" || *dir == "" || flag.NArg() > 0 || *upgrades < 1 || *senders < 1 || *rate < 1 ||
		!slices.Contains([]string{"each", "once", "none"}, *fill) {
		flag.Usage()
		os.Exit(2)
	}
	b := &bench{dir: *dir, timeout: *timeout, fill: *fill}
	res, err := b.run(*bin, *ringSize, *upgrades, *senders, *rate)
	b.killAll()
	if res != nil {
		json.NewEncoder(os.Stdout).Encode(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "upgrader:", err)
		os.Exit(1)
	}
	if !res.OK {
		os.Exit(1)
	}
}

type bench struct {
	dir     string
	timeout time.Duration
	fill    string
	socket  string
	pidFile string
	log     *daemonLog
	ring    *shmring.Reader
	pids    []int // every generation started, for killAll
}

func (b *bench) run(bin, ringSize string, upgrades, senders, rate int) (*result, error) {
	// Adopt the generations whose parent (the previous generation) exits,
	// as systemd does for a service, so that each can be reaped.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("PR_SET_CHILD_SUBREAPER: %w", err)
	}
	b.socket = filepath.Join(b.dir, "c.sock")
	ringPath := filepath.Join(b.dir, "ring")
	b.pidFile = filepath.Join(b.dir, "collectord.pid")
	for _, p := range []string{b.socket, ringPath, b.pidFile} {
		os.Remove(p)
	}
	pidWatch, err := watchPIDFile(b.pidFile)
	if err != nil {
		return nil, err
	}
	defer pidWatch.close()

	cur, err := b.start(bin, ringPath, ringSize)
	if err != nil {
		return nil, err
	}
	if _, err := b.log.wait(b.timeout, "collectord ready", func(e event) bool { return e.Msg == "collectord ready" }); err != nil {
		return nil, err
	}
	if b.ring, err = shmring.OpenReader(ringPath); err != nil {
		return nil, err
	}
	defer b.ring.Close()

	l, err := startLoad(b.socket, senders, rate)
	if err != nil {
		return nil, err
	}
	defer l.halt()
	chk := startChecker(b.ring, len(l.senders))
	defer chk.stop()
	settle := uint64(senders * rate / 20) // 50 ms of load

	var gaps, took []time.Duration
	genStart := b.ring.Head()
	for i := range upgrades {
		if b.fill == "each" || b.fill == "once" && i == 0 {
			if err := b.fillRing(genStart); err != nil {
				return nil, err
			}
		}
		if err := b.waitStored(b.ring.Head() + settle); err != nil {
			return nil, err
		}
		start := time.Now()
		if err := syscall.Kill(cur, syscall.SIGHUP); err != nil {
			return nil, fmt.Errorf("upgrade %d: SIGHUP %d: %w", i+1, cur, err)
		}
		next, err := pidWatch.waitChange(cur, b.timeout)
		if err != nil {
			return nil, fmt.Errorf("upgrade %d of %d: %w", i+1, cur, err)
		}
		took = append(took, time.Since(start))
		b.pids = append(b.pids, next)
		handed, err := b.log.wait(b.timeout, "handed over", func(e event) bool { return e.Msg == "upgrade: handed over" && e.NewPID == next })
		if err != nil {
			return nil, err
		}
		complete, err := b.log.wait(b.timeout, "upgrade complete", func(e event) bool { return e.Msg == "upgrade complete: now serving" && e.PID == next })
		if err != nil {
			return nil, err
		}
		gaps = append(gaps, time.Duration(complete.IngestStarted-handed.IngestStopped))
		if err := b.reap(cur); err != nil {
			return nil, err
		}
		cur = next
		genStart = b.ring.Head()
		if err := b.waitStored(genStart + settle); err != nil {
			return nil, fmt.Errorf("after upgrade %d: %w", i+1, err)
		}
	}

	l.halt()
	if l.err != nil {
		return nil, l.err
	}
	end, err := b.mark("end")
	if err != nil {
		return nil, err
	}
	if err := syscall.Kill(cur, syscall.SIGTERM); err != nil {
		return nil, err
	}
	if err := b.reap(cur); err != nil {
		return nil, err
	}

	res := &result{Upgrades: upgrades, RingSize: ringSize, Fill: b.fill, Senders: senders, Rate: senders * rate}
	if q, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen"); err == nil {
		res.Qlen, _ = strconv.Atoi(strings.TrimSpace(string(q)))
	}
	us := func(d time.Duration) float64 { return math.Round(float64(d)/1e2) / 10 }
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e4) / 100 }
	res.GapP50us, res.GapP99us, res.GapMaxus = us(percentile(gaps, 0.50)), us(percentile(gaps, 0.99)), us(percentile(gaps, 1))
	res.UpgradeP50ms, res.UpgradeP99ms, res.UpgradeMaxms = ms(percentile(took, 0.50)), ms(percentile(took, 0.99)), ms(percentile(took, 1))
	res.SendBlockMaxms = ms(l.maxBlock())
	if err := chk.finish(end, b.timeout, l, res); err != nil {
		return res, err
	}
	return res, nil
}

// start runs the first generation, its stderr into the log.
func (b *bench) start(bin, ringPath, ringSize string) (int, error) {
	logFile, err := os.Create(filepath.Join(b.dir, "collectord.log"))
	if err != nil {
		return 0, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(bin, "--socket", b.socket, "--ring", ringPath, "--ring-size", ringSize,
		"--query-addr", "127.0.0.1:0", "--query-anonymous", "all", "--query-socket", "", "--metrics-addr", "", "--pid-file", b.pidFile)
	cmd.Stderr = pw // every generation inherits it
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pw.Close()
	b.pids = append(b.pids, cmd.Process.Pid)
	b.log = readLog(pr, logFile)
	// Every generation is reaped with wait4 (b.reap), never cmd.Wait.
	return cmd.Process.Pid, nil
}

// reap waits until pid exits and requires exit status 0.
func (b *bench) reap(pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(b.timeout.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll pidfd %d: %w", pid, err)
		}
		if n == 0 {
			return fmt.Errorf("collectord %d did not exit within %v", pid, b.timeout)
		}
		break
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
		return fmt.Errorf("wait4 %d: %w", pid, err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("collectord %d ended with wait status %#x", pid, uint32(ws))
	}
	return nil
}

func (b *bench) killAll() {
	for _, pid := range b.pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// waitStored waits on the ring's futex until record seq is published.
func (b *bench) waitStored(seq uint64) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	if err := b.ring.Wait(ctx, seq); err != nil {
		return fmt.Errorf("waiting for record %d (head %d): %w", seq, b.ring.Head(), err)
	}
	return nil
}

// fillRing sends 4 KiB datagrams until the ring holds nothing older than
// since: the serving process has then written every page of it.
func (b *bench) fillRing(since uint64) error {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: b.socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	msg := []byte("<14>" + fillTag + ": " + strings.Repeat("x", 4096))
	deadline := time.Now().Add(b.timeout)
	for b.ring.Stats().Oldest <= since {
		if time.Now().After(deadline) {
			return fmt.Errorf("the ring did not wrap within %v of filling", b.timeout)
		}
		for range 256 {
			c.SetWriteDeadline(deadline)
			if _, err := c.Write(msg); err != nil {
				return fmt.Errorf("fill: %w", err)
			}
		}
		// Wait until those are stored before looking at the ring again.
		if _, err := b.mark("filled"); err != nil {
			return err
		}
	}
	return nil
}

// mark sends a marker datagram and returns its sequence number once it is
// stored: every datagram sent before it is in the ring by then.
func (b *bench) mark(marker string) (uint64, error) {
	from := b.ring.Head()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: b.socket, Net: "unixgram"})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte("<14>" + loadTag + ": " + marker)); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	cur := b.ring.Cursor(from)
	var e record.Entry
	for {
		rec, _, err := cur.Next()
		if errors.Is(err, shmring.ErrNoRecord) {
			if err := b.ring.Wait(ctx, cur.Pos()); err != nil {
				return 0, fmt.Errorf("waiting for the %s marker: %w", marker, err)
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		if record.Decode(rec.Payload, &e) == nil && string(e.Tag) == loadTag && string(e.Message) == marker {
			return rec.Seq, nil
		}
	}
}

// percentile is the nearest-rank percentile of ds (p in (0, 1]).
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[max(0, int(math.Ceil(p*float64(len(s))))-1)]
}

// ---------------------------------------------------------------------------
// The daemon's log.

type event struct {
	Msg           string `json:"msg"`
	PID           int    `json:"pid"`
	NewPID        int    `json:"new_pid"`
	IngestStopped int64  `json:"ingest_stopped_unix_ns"`
	IngestStarted int64  `json:"ingest_started_unix_ns"`
}

type daemonLog struct {
	mu      sync.Mutex
	events  []event
	closed  bool
	changed chan struct{}
}

// readLog copies the daemon's stderr to file and decodes its JSON lines.
func readLog(r *os.File, file *os.File) *daemonLog {
	l := &daemonLog{changed: make(chan struct{})}
	go func() {
		defer file.Close()
		lines := bufio.NewScanner(r)
		for lines.Scan() {
			file.Write(append(lines.Bytes(), '\n'))
			var e event
			if json.Unmarshal(lines.Bytes(), &e) != nil {
				continue
			}
			l.mu.Lock()
			l.events = append(l.events, e)
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
		l.mu.Lock()
		l.closed = true
		close(l.changed)
		l.mu.Unlock()
	}()
	return l
}

// wait returns the first event for which match holds.
func (l *daemonLog) wait(timeout time.Duration, what string, match func(event) bool) (event, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		i := slices.IndexFunc(l.events, match)
		closed, changed := l.closed, l.changed
		var e event
		if i >= 0 {
			e = l.events[i]
		}
		l.mu.Unlock()
		switch {
		case i >= 0:
			return e, nil
		case closed:
			return event{}, fmt.Errorf("collectord's log ended before %s (see collectord.log)", what)
		}
		select {
		case <-changed:
		case <-deadline.C:
			return event{}, fmt.Errorf("no %s within %v (see collectord.log)", what, timeout)
		}
	}
}

// ---------------------------------------------------------------------------
// The pid file, watched with inotify: the daemon replaces it by rename.

type pidWatcher struct {
	path string
	fd   int
}

func watchPIDFile(path string) (*pidWatcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(path), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", filepath.Dir(path), err)
	}
	return &pidWatcher{path: path, fd: fd}, nil
}

func (w *pidWatcher) close() { unix.Close(w.fd) }

// waitChange returns the pid in the file once it is other than old.
func (w *pidWatcher) waitChange(old int, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		if b, err := os.ReadFile(w.path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != old {
				return pid, nil
			}
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, fmt.Errorf("pid file still names %d after %v", old, timeout)
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}, int(left.Milliseconds())+1)
		if err != nil && err != unix.EINTR {
			return 0, fmt.Errorf("poll inotify: %w", err)
		}
		if n > 0 {
			unix.Read(w.fd, buf) // drain; the file is re-read above
		}
	}
}

// ---------------------------------------------------------------------------
// Load: blocking senders at a steady rate, "s=ID n=N" in each datagram.

type load struct {
	senders []*sender
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	err     error
}

type sender struct {
	id       int
	sent     uint64
	maxBlock time.Duration
	err      error
}

func startLoad(socket string, n, rate int) (*load, error) {
	l := &load{done: make(chan struct{})}
	for id := range n {
		c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
		if err != nil {
			l.halt()
			return nil, err
		}
		s := &sender{id: id}
		l.senders = append(l.senders, s)
		l.wg.Go(func() {
			defer c.Close()
			s.run(c, rate, l.done)
		})
	}
	return l, nil
}

func (s *sender) run(c *net.UnixConn, rate int, done <-chan struct{}) {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var buf []byte
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		for due := uint64(time.Since(start).Seconds() * float64(rate)); s.sent < due; s.sent++ {
			buf = fmt.Appendf(buf[:0], "<14>%s: s=%d n=%d", loadTag, s.id, s.sent)
			c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			t0 := time.Now()
			if _, err := c.Write(buf); err != nil {
				s.err = fmt.Errorf("sender %d, datagram %d: %w", s.id, s.sent, err)
				return
			}
			s.maxBlock = max(s.maxBlock, time.Since(t0))
		}
	}
}

func (l *load) halt() {
	l.once.Do(func() {
		close(l.done)
		l.wg.Wait()
		for _, s := range l.senders {
			l.err = errors.Join(l.err, s.err)
		}
	})
}

func (l *load) maxBlock() time.Duration {
	var m time.Duration
	for _, s := range l.senders {
		m = max(m, s.maxBlock)
	}
	return m
}

// ---------------------------------------------------------------------------
// The checker follows the ring while the run goes on (fills overwrite the
// load's records soon after they are stored).

type checker struct {
	r      *shmring.Reader
	ctx    context.Context // cancelled by finish (after sending end) or stop
	cancel context.CancelFunc
	done   chan struct{}
	end    chan uint64 // the final marker's sequence number

	next      []uint64 // per sender, the number expected next
	seen      []map[uint64]bool
	res       result
	readerErr error
}

func startChecker(r *shmring.Reader, senders int) *checker {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checker{r: r, ctx: ctx, cancel: cancel, done: make(chan struct{}), end: make(chan uint64, 1),
		next: make([]uint64, senders), seen: make([]map[uint64]bool, senders)}
	for i := range c.seen {
		c.seen[i] = map[uint64]bool{}
	}
	from := r.Head()
	go c.run(from)
	return c
}

// run reads every record from from on until the end marker, waiting on the
// ring's futex when it has caught up.
func (c *checker) run(from uint64) {
	defer close(c.done)
	cur := c.r.Cursor(from)
	end, endKnown := uint64(0), false
	var e record.Entry
	for !endKnown || cur.Pos() <= end {
		rec, lost, err := cur.Next()
		c.res.Overtaken += lost
		if errors.Is(err, shmring.ErrNoRecord) {
			if !endKnown {
				select {
				case end, endKnown = <-c.end:
					continue
				default:
				}
			}
			if c.ctx.Err() != nil {
				if !endKnown {
					c.readerErr = errors.New("checker stopped")
				} else {
					c.readerErr = fmt.Errorf("the ring ends at %d, before the end marker %d", cur.Pos(), end)
				}
				return
			}
			c.r.Wait(c.ctx, cur.Pos()) // returns on a publish or on cancel
			continue
		}
		if err != nil {
			c.readerErr = err
			return
		}
		if err := record.Decode(rec.Payload, &e); err != nil {
			c.readerErr = fmt.Errorf("record %d: %w", rec.Seq, err)
			return
		}
		if string(e.Tag) != loadTag || !strings.HasPrefix(string(e.Message), "s=") {
			continue // fill, markers
		}
		var id int
		var n uint64
		if _, err := fmt.Sscanf(string(e.Message), "s=%d n=%d", &id, &n); err != nil || id < 0 || id >= len(c.next) {
			c.readerErr = fmt.Errorf("record %d: unexpected message %q", rec.Seq, e.Message)
			return
		}
		c.res.Stored++
		if e.Flags&record.FlagCreds == 0 || e.PID != uint32(os.Getpid()) {
			c.res.NoCreds++
		}
		switch {
		case c.seen[id][n]:
			c.res.Duplicates++
		case n < c.next[id]:
			c.res.OutOfOrder++
		}
		c.seen[id][n] = true
		c.next[id] = max(c.next[id], n+1)
	}
}

// finish tells the checker the final marker's sequence number, waits
// until it has read up to it, and fills in res.
func (c *checker) finish(end uint64, timeout time.Duration, l *load, res *result) error {
	c.end <- end
	c.cancel() // wake a Wait so that it sees the end; the records up to it are published
	select {
	case <-c.done:
	case <-time.After(timeout):
		return fmt.Errorf("the checker did not reach record %d within %v", end, timeout)
	}
	if c.readerErr != nil {
		return c.readerErr
	}
	res.Stored, res.Duplicates, res.OutOfOrder, res.NoCreds, res.Overtaken =
		c.res.Stored, c.res.Duplicates, c.res.OutOfOrder, c.res.NoCreds, c.res.Overtaken
	for i, s := range l.senders {
		res.Sent += s.sent
		for n := range s.sent {
			if !c.seen[i][n] {
				res.Missing++
			}
		}
	}
	res.OK = res.Missing == 0 && res.Duplicates == 0 && res.OutOfOrder == 0 && res.NoCreds == 0 && res.Overtaken == 0
	return nil
}

func (c *checker) stop() {
	c.cancel()
	<-c.done
}
