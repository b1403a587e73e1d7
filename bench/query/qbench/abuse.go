//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/shmring"
)

// abuseResult is what abuse prints. Rates are records per second from the
// first send until the ring published the last.
type abuseResult struct {
	N         int `json:"n"`
	Senders   int `json:"senders"`
	Idle      int `json:"idle_connections"`
	HalfOpen  int `json:"half_open_connections"`
	Slowloris int `json:"slowloris_connections"`
	Stalled   int `json:"stalled_followers"`
	Conns     int `json:"abuse_connections"` // all of the above, in each loaded third
	// Flood connections never say hello and come back a second after the
	// server drops them (internal/flood); Dropped counts the drops over
	// all loaded thirds. Hold is how many `logctl tail -f` of one plain
	// user hold the local socket (its per-user cap: one more is refused).
	Flood   int `json:"flood_connections,omitempty"`
	Dropped int `json:"flood_dropped,omitempty"`
	Hold    int `json:"local_holders,omitempty"`

	// Per round, one rate per third: no query client at all (plain),
	// logctl runs only (tail), the abuse mix and the same logctl runs
	// (loaded).
	Plain  []float64 `json:"plain_rates"`
	Tailed []float64 `json:"tail_rates"`
	Loaded []float64 `json:"loaded_rates"`
	Order  []string  `json:"order"` // per round, the order the thirds ran in

	PlainMedian  float64 `json:"plain_median"`
	TailedMedian float64 `json:"tail_median"`
	LoadMedian   float64 `json:"loaded_median"`
	// Medians over rounds of per-round ratios. Ratio (loaded/tail) is what
	// the abuse mix costs ingest, everything else equal; RatioPlain
	// (loaded/plain) also counts the logctl processes' own CPU, which
	// TailCost (tail/plain) shows alone.
	Ratios     []float64 `json:"ratios"` // loaded/tail, per round
	Ratio      float64   `json:"ratio_median"`
	RatioPlain float64   `json:"ratio_vs_plain_median"`
	TailCost   float64   `json:"tail_cost_median"`

	// logctl tail -n TailN, TailsPerThird runs TailEvery apart from the
	// start of each tail and loaded third (the rest after the ingest, if
	// it ended first). Wall time, fork to exit.
	TailN         int      `json:"tail_n"`
	TailsPerThird int      `json:"tails_per_third"`
	TailEveryMS   float64  `json:"tail_every_ms"`
	TailRuns      int      `json:"tail_runs"`     // both kinds of thirds
	TailFailures  int      `json:"tail_failures"` // exit status not 0, or not TailN lines
	TailProblems  []string `json:"tail_problems,omitempty"`
	Tail          summary  `json:"tail"`          // under the abuse mix
	TailBaseline  summary  `json:"tail_baseline"` // without it
	// With -local: the same runs over the local socket, taking turns with
	// those over TCP.
	TailLocal         *summary `json:"tail_local,omitempty"`
	TailLocalBaseline *summary `json:"tail_local_baseline,omitempty"`

	// Per loaded third, when it ended: the fewest bytes waiting in a
	// stalled follower's receive queue (SIOCINQ; > 0: the server was
	// blocked writing to every one of them), and how many of the idle,
	// half-open and slowloris connections the server had already closed
	// or answered (0: all were still held open).
	StalledMinQueued []int `json:"stalled_min_queued_bytes"`
	ServerClosed     []int `json:"server_closed"`
	// Per round, with -pid: the daemon's private resident memory (RssAnon:
	// heap and stacks, not the ring's shared pages) at the end of the plain
	// third, and at the end of the loaded third with the whole mix
	// connected.
	DaemonAnonPlainKiB  []int `json:"daemon_rss_anon_plain_kib,omitempty"`
	DaemonAnonLoadedKiB []int `json:"daemon_rss_anon_loaded_kib,omitempty"`
}

// The three kinds of thirds of a round.
const (
	thirdPlain  = iota // no query client
	thirdTail          // logctl runs
	thirdLoaded        // the abuse mix and the same logctl runs
)

var thirdNames = [3]string{"plain", "tail", "loaded"}

// thirdOrders are the six orders of the three kinds, cycled through round
// by round: each kind runs first, second and last equally often, so that
// load drifting on the host hits them alike.
var thirdOrders = [6][3]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 2, 1}, {2, 1, 0}, {1, 0, 2}}

// runAbuse measures the ingest rate under the whole abuse mix at once:
// idle connections (hello, then nothing), half-open ones (connected,
// nothing sent), slowloris ones (a hello frame's header and a few bytes of
// its body, then one more byte every -trickle), stalled followers (a
// follow of everything from the ring's oldest record, a small receive
// buffer, never read), while the real logctl answers `tail -n N`. Each
// round has three thirds, each sending -n records: no query client; the
// logctl runs alone; the mix with the same logctl runs. Every logctl run
// must exit 0 having printed N lines.
func runAbuse(args []string) (any, error) {
	fs := flag.NewFlagSet("abuse", flag.ContinueOnError)
	socket := fs.String("socket", "", "daemon datagram socket `path`")
	ring := fs.String("ring", "", "ring file `path`")
	addr := fs.String("addr", "", "query server `host:port`")
	logctl := fs.String("logctl", "", "logctl `binary`")
	pid := fs.Int("pid", 0, "the daemon's `pid`, to report its memory (0: not reported)")
	n := fs.Int("n", 200_000, "records per third")
	senders := fs.Int("senders", 4, "concurrent blocking senders")
	size := fs.Int("size", 120, "approximate datagram size in `bytes`")
	idle := fs.Int("idle", 150, "idle connections (hello completed)")
	halfOpen := fs.Int("half-open", 25, "half-open connections (connected, nothing sent)")
	slowloris := fs.Int("slowloris", 25, "slowloris connections (a partial hello frame, trickled)")
	trickle := fs.Duration("trickle", time.Second, "slowloris: one more byte this often (0: never)")
	stalled := fs.Int("stalled", 8, "stalled followers")
	rcvbuf := fs.Int("rcvbuf", 4096, "stalled followers' SO_RCVBUF in `bytes`")
	tailN := fs.Int("tail-n", 100, "logctl tail -n `N`")
	tails := fs.Int("tails", 3, "logctl runs per tail and loaded third")
	tailEvery := fs.Duration("tail-every", 200*time.Millisecond, "start the logctl runs of a third this far apart")
	rounds := fs.Int("rounds", 18, "rounds (each: a plain, a tail and a loaded third)")
	floodConns := fs.Int("flood", 0, "connections that never say hello, reopened a second after the server drops them")
	floodSettle := fs.Duration("flood-settle", 200*time.Millisecond, "with -flood: how long the server's count of connections in their handshake must stay put, once it holds the flood's talking half, before the third starts")
	maxHandshakes := fs.Int("max-handshakes", query.DefaultMaxHandshakes, "the daemon's handshake budget (query_max_handshakes): -flood waits until the server holds as many of the flood's talking half as it may")
	token := fs.String("token-file", "", "logctl's runs over TCP send the token in `file`")
	local := fs.String("local", "", "the daemon's local query socket `path`: logctl runs over it too, and -hold uses it")
	hold := fs.Int("hold", 0, "`logctl tail -f` processes of -hold-uid on the local socket: its per-user cap")
	holdUID := fs.Int("hold-uid", 65534, "the plain user of -hold (uid and gid)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *socket == "" || *ring == "" || *addr == "" || *logctl == "" {
		return nil, errors.New("-socket, -ring, -addr and -logctl are required")
	}
	if *n < 1 || *senders < 1 || *rounds < 1 || *tailN < 1 || *tails < 0 || *tailEvery < 0 {
		return nil, errors.New("-n, -senders, -rounds and -tail-n must be positive, -tails and -tail-every not negative")
	}
	if total := *idle + *halfOpen + *slowloris + *stalled + 1; total > query.DefaultMaxConns {
		return nil, fmt.Errorf("%d connections with logctl's: over the server's default MaxConns %d, logctl would be refused busy", total, query.DefaultMaxConns)
	}
	r, err := shmring.OpenReader(*ring)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if r.Head()-r.Stats().Oldest < uint64(*tailN) {
		// logctl must have tail-n records to print: fill the ring first.
		if _, err := sendRecords(*socket, r, *tailN, *senders, *size); err != nil {
			return nil, err
		}
	}

	if (*hold > 0 || *floodConns > 0) && *local == "" {
		return nil, errors.New("-hold and -flood need -local")
	}
	res := abuseResult{N: *n, Senders: *senders, Idle: *idle, HalfOpen: *halfOpen, Slowloris: *slowloris, Stalled: *stalled,
		Conns: *idle + *halfOpen + *slowloris + *stalled, Flood: *floodConns, Hold: *hold,
		TailN: *tailN, TailsPerThird: *tails, TailEveryMS: float64(*tailEvery) / 1e6}
	// tailers[kind] are the logctl runs of a third: over TCP, and over
	// the local socket with -local.
	tailers := [3][]*tailer{}
	for _, k := range []int{thirdTail, thirdLoaded} {
		tcp := &tailer{logctl: *logctl, args: []string{"--addr", *addr}, n: *tailN}
		if *token != "" {
			tcp.args = append(tcp.args, "--token-file", *token)
		}
		tailers[k] = []*tailer{tcp}
		if *local != "" {
			tailers[k] = append(tailers[k], &tailer{logctl: *logctl, args: []string{"--addr", query.UnixPrefix + *local}, n: *tailN})
		}
	}
	third := func(kind int) (float64, error) {
		if kind == thirdLoaded {
			mix, err := openAbuse(*addr, *idle, *halfOpen, *slowloris, *stalled, *rcvbuf, *trickle)
			if err != nil {
				return 0, err
			}
			defer mix.close()
			if *hold > 0 {
				h, err := holdLocal(*logctl, *local, *hold, uint32(*holdUID))
				if err != nil {
					return 0, err
				}
				defer h.close()
			}
			if *floodConns > 0 {
				f, err := startFlood(*addr, *floodConns)
				if err != nil {
					return 0, err
				}
				defer func() {
					n, err := f.stop()
					if err != nil {
						fmt.Fprintf(os.Stderr, "qbench abuse: %v\n", err)
					}
					res.Dropped += n
				}()
				// The flood is held, not being opened: the server has
				// accepted what arrived (and, when the flood is larger than
				// its handshake budget, dropped the rest) before the third
				// starts.
				if err := waitHeld(*local, min(*floodConns/2, *maxHandshakes), *floodSettle); err != nil {
					return 0, err
				}
			}
			defer func() {
				res.StalledMinQueued = append(res.StalledMinQueued, mix.stalledMinQueued())
				res.ServerClosed = append(res.ServerClosed, mix.serverClosed())
				if *pid > 0 {
					kib, _ := procStatusKiB(*pid, "RssAnon")
					res.DaemonAnonLoadedKiB = append(res.DaemonAnonLoadedKiB, kib)
				}
			}()
		}
		var wg sync.WaitGroup
		if tls := tailers[kind]; tls != nil {
			wg.Go(func() { burst(tls, *tails, *tailEvery) })
		}
		el, err := sendRecords(*socket, r, *n, *senders, *size)
		wg.Wait()
		if err != nil {
			return 0, err
		}
		if kind == thirdPlain && *pid > 0 {
			kib, _ := procStatusKiB(*pid, "RssAnon")
			res.DaemonAnonPlainKiB = append(res.DaemonAnonPlainKiB, kib)
		}
		return float64(*n) / el.Seconds(), nil
	}
	var vsPlain, tailCost []float64
	for i := range *rounds {
		var rate [3]float64
		order := thirdOrders[i%len(thirdOrders)]
		for _, kind := range order {
			if rate[kind], err = third(kind); err != nil {
				return nil, fmt.Errorf("round %d, %s third: %w", i+1, thirdNames[kind], err)
			}
		}
		res.Order = append(res.Order, thirdNames[order[0]]+","+thirdNames[order[1]]+","+thirdNames[order[2]])
		res.Plain = append(res.Plain, rate[thirdPlain])
		res.Tailed = append(res.Tailed, rate[thirdTail])
		res.Loaded = append(res.Loaded, rate[thirdLoaded])
		res.Ratios = append(res.Ratios, rate[thirdLoaded]/rate[thirdTail])
		vsPlain = append(vsPlain, rate[thirdLoaded]/rate[thirdPlain])
		tailCost = append(tailCost, rate[thirdTail]/rate[thirdPlain])
	}
	res.PlainMedian, res.TailedMedian, res.LoadMedian = median(res.Plain), median(res.Tailed), median(res.Loaded)
	res.Ratio, res.RatioPlain, res.TailCost = median(res.Ratios), median(vsPlain), median(tailCost)
	for _, tls := range tailers[thirdTail:] {
		for _, tl := range tls {
			res.TailRuns += len(tl.walls) + len(tl.problems)
			res.TailFailures += len(tl.problems)
			res.TailProblems = append(res.TailProblems, tl.problems...)
		}
	}
	res.Tail, res.TailBaseline = summarize(tailers[thirdLoaded][0].walls), summarize(tailers[thirdTail][0].walls)
	if *local != "" {
		loaded, base := summarize(tailers[thirdLoaded][1].walls), summarize(tailers[thirdTail][1].walls)
		res.TailLocal, res.TailLocalBaseline = &loaded, &base
	}
	return res, nil
}

// abuseMix is one loaded round's abusive connections.
type abuseMix struct {
	quiet   []net.Conn // idle, half-open and slowloris: the server should send them nothing
	stalled []net.Conn
	stop    chan struct{}
	wg      sync.WaitGroup // the trickler
}

// openAbuse opens the mix: half-open and slowloris connections first, then
// the idle ones and the stalled followers, whose hello replies show that
// the server accepted all of them (it accepts in the order they connected).
func openAbuse(addr string, idle, halfOpen, slowloris, stalled, rcvbuf int, trickle time.Duration) (m *abuseMix, err error) {
	m = &abuseMix{stop: make(chan struct{})}
	defer func() {
		if err != nil {
			m.close()
		}
	}()
	for range halfOpen {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return m, fmt.Errorf("half-open connection: %w", err)
		}
		m.quiet = append(m.quiet, nc)
	}
	var loris []net.Conn
	for range slowloris {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return m, fmt.Errorf("slowloris connection: %w", err)
		}
		m.quiet = append(m.quiet, nc)
		loris = append(loris, nc)
		if _, err := nc.Write(slowlorisStart()); err != nil {
			return m, fmt.Errorf("slowloris connection: %w", err)
		}
	}
	for range idle {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			return m, fmt.Errorf("idle connection: %w", err)
		}
		m.quiet = append(m.quiet, nc)
		if err := helloConn(nc, "qbench-idle"); err != nil {
			return m, fmt.Errorf("idle connection: %w", err)
		}
	}
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf) })
		return serr
	}}
	for range stalled {
		nc, err := d.Dial("tcp", addr)
		if err != nil {
			return m, fmt.Errorf("stalled follower: %w", err)
		}
		m.stalled = append(m.stalled, nc)
		if err := helloConn(nc, "qbench-stalled"); err != nil {
			return m, fmt.Errorf("stalled follower: %w", err)
		}
		if _, err := nc.Write(query.AppendFrame(nil, query.FrameQuery, []byte(`{"follow":true,"after":0}`))); err != nil {
			return m, fmt.Errorf("stalled follower: %w", err)
		}
	}
	if trickle > 0 && len(loris) > 0 {
		m.wg.Go(func() {
			t := time.NewTicker(trickle)
			defer t.Stop()
			for {
				select {
				case <-m.stop:
					return
				case <-t.C:
				}
				for _, nc := range loris {
					nc.Write([]byte{'x'}) // fails once the server dropped it: fine
				}
			}
		})
	}
	return m, nil
}

// slowlorisStart is the beginning of a hello frame that announces the
// largest body a client may send, and sends a few bytes of it.
func slowlorisStart() []byte {
	b := binary.LittleEndian.AppendUint32(nil, query.MaxClientFrame)
	b = append(b, byte(query.FrameHello))
	return append(b, `{"protocol":1,"cl`...)
}

func (m *abuseMix) close() {
	close(m.stop)
	m.wg.Wait()
	for _, nc := range m.quiet {
		nc.Close()
	}
	for _, nc := range m.stalled {
		nc.Close()
	}
}

// stalledMinQueued returns the fewest bytes waiting in a stalled
// follower's receive queue (-1 without stalled followers).
func (m *abuseMix) stalledMinQueued() int {
	least := -1
	for _, nc := range m.stalled {
		if q := unread(nc); least < 0 || q < least {
			least = q
		}
	}
	return least
}

// serverClosed counts the quiet connections on which the server has sent
// something (an X frame: timeout, busy, shutdown) or closed its side.
func (m *abuseMix) serverClosed() int {
	count := 0
	for _, nc := range m.quiet {
		rc, err := nc.(*net.TCPConn).SyscallConn()
		if err != nil {
			count++
			continue
		}
		var b [1]byte
		rc.Control(func(fd uintptr) {
			n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
			if n > 0 || (n == 0 && err == nil) || (err != nil && !errors.Is(err, unix.EAGAIN)) {
				count++
			}
		})
	}
	return count
}

// helloConn says hello on nc and reads the server's reply.
func helloConn(nc net.Conn, client string) error {
	if _, err := nc.Write(query.AppendFrame(nil, query.FrameHello, fmt.Appendf(nil, `{"protocol":1,"client":%q}`, client))); err != nil {
		return err
	}
	nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer nc.SetReadDeadline(time.Time{})
	ft, body, err := query.NewFrameReader(bufio.NewReaderSize(nc, 512), query.MaxServerFrame).Next()
	if err != nil || ft != query.FrameWelcome {
		return fmt.Errorf("hello: %v %s %v", ft, body, err)
	}
	return nil
}

// tailer runs `logctl tail -n N ARGS...` and keeps the wall time of
// each run that printed N lines and exited 0.
type tailer struct {
	logctl string
	args   []string
	n      int

	walls    []time.Duration
	problems []string // runs that failed
}

// burst runs each tailer count times, taking turns, starting a run every
// apart (or when the previous one ended, if later).
func burst(tls []*tailer, count int, every time.Duration) {
	start := time.Now()
	for i := range count * len(tls) {
		if wait := time.Until(start.Add(time.Duration(i) * every)); wait > 0 {
			time.Sleep(wait) // pacing the runs, not synchronising
		}
		tls[i%len(tls)].once()
	}
}

func (t *tailer) once() {
	var out lineCounter
	var stderr bytes.Buffer
	cmd := exec.Command(t.logctl, append([]string{"tail", "-n", strconv.Itoa(t.n)}, t.args...)...)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	switch {
	case err != nil:
		t.problems = append(t.problems, fmt.Sprintf("%v: %s", err, strings.TrimSpace(stderr.String())))
	case out.lines != t.n:
		t.problems = append(t.problems, fmt.Sprintf("printed %d lines, want %d: %s", out.lines, t.n, strings.TrimSpace(stderr.String())))
	default:
		t.walls = append(t.walls, wall)
	}
}

// lineCounter counts the newlines written to it.
type lineCounter struct{ lines int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// procStatusKiB returns a "kB" field of /proc/PID/status.
func procStatusKiB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// waitHeld waits until the daemon whose local query socket is at path holds
// at least want connections in their handshake (collectord_query_handshakes:
// the flood's connections that sent something; the silent ones wait in the
// kernel, TCP_DEFER_ACCEPT) and that count has not changed for quiet. It
// gives up after 30 seconds.
func waitHeld(path string, want int, quiet time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := query.Dial(ctx, query.UnixPrefix+path, query.DialOptions{Client: "qbench"})
	if err != nil {
		return fmt.Errorf("wait for the flood to be held: %w", err)
	}
	defer c.Close()
	last, since := -1, time.Now()
	for {
		st, err := c.Stats(ctx)
		if err != nil {
			return fmt.Errorf("wait for the flood to be held: %w", err)
		}
		n := -1
		for _, s := range st.Samples {
			if s.Name == "collectord_query_handshakes" {
				n = int(s.Value)
			}
		}
		if n != last {
			last, since = n, time.Now()
		} else if n >= want && time.Since(since) >= quiet {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the flood to be held: %d connections in their handshake, want %d", n, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
