//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/collectord/collectord/internal/sockdup"

	"github.com/coreos/go-systemd/v22/activation"
	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/internal/dgram"
	"github.com/collectord/collectord/internal/ingestloop"
	"github.com/collectord/collectord/internal/metrics"
	"github.com/collectord/collectord/internal/sdnotify"
	"github.com/collectord/collectord/internal/upgrade"
	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/shmring"
)

// Timeouts of the daemon's phases.
const (
	// UpgradeReadyTimeout bounds how long a new process may take to
	// initialise before the upgrade is abandoned.
	UpgradeReadyTimeout = 30 * time.Second
	// UpgradeTakeoverTimeout bounds how long a new process may take to
	// take the ring and start reading once released.
	UpgradeTakeoverTimeout = 10 * time.Second
	// ShutdownTimeout bounds how long stopping waits for query clients.
	ShutdownTimeout = 5 * time.Second
	// statusInterval is how often STATUS= is refreshed under systemd.
	statusInterval = 5 * time.Second
	// recommendedQlen is the net.unix.max_dgram_qlen systemd sets at boot.
	recommendedQlen = 512
)

// Config is what Run needs; the command fills it from flags and the config
// file. Zero values mean the packages' defaults.
type Config struct {
	Socket     string      // datagram socket path, when not passed in
	SocketMode os.FileMode // its permission
	RecvBuffer int         // SO_RCVBUF
	MaxMessage int         // longest datagram stored whole
	Batch      int         // datagrams per recvmmsg and per ring commit
	RateLimit  ingestloop.RateLimit

	Ring      string
	RingSize  uint64
	RingMode  os.FileMode
	RingGroup int // readers' group id for the ring and its directory; 0: the daemon's group

	QueryAddr string // "" disables the query server (unless a socket is passed)
	// QueryInsecure allows a query socket on an address other than
	// loopback with neither Query.TLSConfig nor Query.Tokens set; without
	// it Run refuses to start, whether it bound the socket or was passed it.
	QueryInsecure bool
	MetricsAddr   string // "" disables the metrics server (unless a socket is passed)
	// TracerProvider traces query requests; nil means no tracing.
	TracerProvider trace.TracerProvider

	PIDFile string // written atomically by whichever process serves; "" for none

	// Exe and Args re-execute the daemon on an upgrade (Args[0] included).
	Exe  string
	Args []string

	Query  query.Options
	Logger *slog.Logger
}

// Run serves until ctx is done, then stops cleanly, or until an upgrade
// has handed everything to a new process, then returns nil so the caller
// exits. Each value received on reload starts an upgrade.
func Run(ctx context.Context, cfg Config, reload <-chan struct{}) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &daemon{cfg: cfg, log: cfg.Logger, notify: sdnotify.New()}
	return d.run(ctx, reload)
}

// daemon is the state of one serving process. Its fields are owned by the
// goroutine in run; the goroutines it starts are stopped before run returns.
type daemon struct {
	cfg    Config
	log    *slog.Logger
	notify *sdnotify.Notifier

	socks *sockets
	w     *shmring.Writer

	in            *ingestloop.Ingester
	inPtr         atomic.Pointer[ingestloop.Ingester] // in, for the status and metrics goroutines
	upgradesOK    atomic.Uint64
	upgradesBad   atomic.Uint64
	handoff       time.Duration // the gap before this process read, if it took over
	ingestCancel  context.CancelFunc
	ingestDone    chan error
	ingestStarted time.Time

	reader  *shmring.Reader // the published state, for queries and status
	qs      *query.Server
	metrics *http.Server
	// qln and mln are the servers' own copies of the query and metrics
	// sockets, closed to stop accepting while the sockets stay open.
	qln, mln net.Listener
	serving  sync.WaitGroup // Serve goroutines of qs and metrics

	stopStatus func() // stops statusLoop and waits for it; idempotent

	handedOver bool // sockets and ring now belong to a new process
	// socketFile is the datagram socket's path when this process must
	// remove it on a clean stop: it (or the process it took over from)
	// bound it, and it is not in systemd's fd store. "" otherwise.
	socketFile string
}

func (d *daemon) run(ctx context.Context, reload <-chan struct{}) error {
	up, err := upgrade.Inherited()
	if err != nil {
		d.log.Warn("ignoring a malformed upgrade handover", "err", err)
		up = nil
	}
	inheritedSocketFile, _ := os.LookupEnv(envSocketFile)
	os.Unsetenv(envSocketFile) // meant for this process only
	var files map[string]*os.File
	if up != nil {
		files = up.Files()
		d.log.Info("taking over from the previous process", "ppid", os.Getppid())
	} else {
		files = activationFiles()
	}
	fail := func(err error) error {
		if up != nil {
			up.Failed(err.Error())
		}
		return err
	}
	if err := prepareDirs(&d.cfg, d.log); err != nil {
		return fail(err)
	}
	if d.socks, err = acquireSockets(&d.cfg, files, d.log); err != nil {
		return fail(err)
	}
	defer d.closeSockets()
	if err := d.checkQueryAccess(); err != nil {
		return fail(err)
	}
	if d.socks.bound[NameIngest] {
		d.socketFile = d.cfg.Socket
	} else if up != nil {
		d.socketFile = inheritedSocketFile
	}
	if qlen, err := dgram.MaxDgramQlen(); err == nil && qlen < recommendedQlen {
		d.log.Warn("net.unix.max_dgram_qlen is low: senders will block or drop under load; install deploy/sysctl.d/50-collectord.conf",
			"max_dgram_qlen", qlen, "recommended", recommendedQlen)
	}

	defer d.closeReader()
	if up != nil {
		// Map the ring read-only now, while the old process still writes
		// it, so that taking over is only locking and mapping it for
		// writing. A ring that does not exist yet (the configuration
		// names another) is opened after the writer creates it.
		if r, err := shmring.OpenReader(d.cfg.Ring); err == nil {
			d.reader = r
		}
		if err := up.Ready(); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, UpgradeReadyTimeout+UpgradeTakeoverTimeout)
		err := up.WaitReleased(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("wait for the previous process to release the ring: %w", err)
		}
	}
	if err := d.openRing(ctx); err != nil {
		return fail(err)
	}
	defer d.closeRing()
	d.startIngest()
	if rs := d.w.Recovered(); up != nil && !rs.ClosedAt.IsZero() {
		// The previous process stopped reading just before it closed the ring.
		d.handoff = d.ingestStarted.Sub(rs.ClosedAt)
	}
	defer d.stopServers(context.WithoutCancel(ctx))
	if err := d.startServers(); err != nil {
		d.stopIngest()
		return fail(err)
	}

	if up != nil {
		if err := up.Running(); err != nil {
			// The old process gave up on us and will resume: step back.
			d.stopIngest()
			return fmt.Errorf("confirm takeover: %w", err)
		}
		d.log.Info("upgrade complete: now serving", "pid", os.Getpid(), "ingest_started_unix_ns", d.ingestStarted.UnixNano(),
			"handoff_gap_ms", float64(d.handoff.Microseconds())/1000)
	} else {
		d.storeFDs()
		d.notify.Ready(d.status())
	}
	if d.cfg.PIDFile != "" {
		if err := upgrade.WritePIDFile(d.cfg.PIDFile, os.Getpid()); err != nil {
			d.log.Warn("write pid file", "path", d.cfg.PIDFile, "err", err)
		}
	}
	d.log.Info("collectord ready", "socket", d.cfg.Socket, "query_addr", addrOf(d.socks.query),
		"metrics_addr", addrOf(d.socks.metrics), "pid", os.Getpid())

	bg, stopBG := context.WithCancel(ctx)
	var bgDone sync.WaitGroup
	bgDone.Go(func() { d.statusLoop(bg) })
	d.stopStatus = func() {
		stopBG()
		bgDone.Wait()
	}
	defer d.stopStatus()

	for {
		select {
		case <-ctx.Done():
			d.notify.Stopping()
			// Accept nothing more: under socket activation new
			// connections wait in the backlog for the next instance
			// instead of being greeted and told "shutdown".
			d.stopAccepting()
			err := d.stopIngest()
			d.log.Info("collectord stopping", "stored", d.stored(), "next_seq", d.w.Stats().Head)
			return err
		case err := <-d.ingestDone:
			d.ingestDone = nil
			return fmt.Errorf("ingest: %w", err)
		case <-reload:
			if err := d.upgrade(ctx); err != nil {
				d.upgradesBad.Add(1)
				d.log.Error("upgrade failed; still serving", "err", err)
				d.notify.Notify("READY=1\nSTATUS=upgrade failed: " + oneLine(err.Error()))
				continue
			}
			return nil
		}
	}
}

// activationFiles returns the sockets systemd passed, by name (first of
// each name).
func activationFiles() map[string]*os.File {
	files := map[string]*os.File{}
	for name, fs := range activation.FilesWithNames() {
		for i, f := range fs {
			if i == 0 {
				files[name] = f
			} else {
				f.Close()
			}
		}
	}
	return files
}

// openRing takes the writer role, telling systemd to wait longer while a
// large ring is being verified after a crash.
func (d *daemon) openRing(ctx context.Context) error {
	done := make(chan struct{})
	var extender sync.WaitGroup
	extender.Go(func() {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				d.notify.ExtendTimeout(30 * time.Second)
				d.notify.Status("recovering the ring")
				t.Reset(10 * time.Second)
			}
		}
	})
	w, err := shmring.OpenWriter(d.cfg.Ring, shmring.Options{Size: d.cfg.RingSize, Mode: d.cfg.RingMode, Group: d.cfg.RingGroup})
	close(done)
	extender.Wait()
	if err != nil {
		return err
	}
	d.w = w
	if d.reader == nil {
		if d.reader, err = shmring.OpenReader(d.cfg.Ring); err != nil {
			w.Close()
			return err
		}
	}
	rs, st := w.Recovered(), w.Stats()
	d.log.Info("ring open", "path", d.cfg.Ring, "size", st.Size, "created", rs.Created, "clean", rs.Clean,
		"records", rs.Records, "damaged", rs.Damaged, "adopted", rs.Unpublished, "rebuilt", rs.Rebuilt, "next_seq", st.Head)
	return nil
}

func (d *daemon) closeRing() {
	if d.w != nil {
		d.w.Close()
		d.w = nil
	}
}

// closeReader unmaps the daemon's read-only view of the ring.
func (d *daemon) closeReader() {
	if d.reader != nil {
		d.reader.Close()
		d.reader = nil
	}
}

// startIngest starts reading the datagram socket into the ring.
func (d *daemon) startIngest() {
	in, err := ingestloop.New(d.socks.ingest, d.w, ingestloop.Options{BatchSize: d.cfg.Batch, MaxMessage: d.cfg.MaxMessage, Logger: d.log, RateLimit: d.cfg.RateLimit})
	if err != nil {
		// Options were validated; a failure here is a bug worth stopping for.
		panic(fmt.Sprintf("ingestloop.New: %v", err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.in, d.ingestCancel, d.ingestDone = in, cancel, make(chan error, 1)
	d.inPtr.Store(in)
	d.ingestStarted = time.Now()
	go func() { d.ingestDone <- in.Run(ctx) }()
}

// stopIngest stops reading and returns once everything read is published.
func (d *daemon) stopIngest() error {
	if d.ingestCancel == nil {
		return nil
	}
	d.ingestCancel()
	d.ingestCancel = nil
	if d.ingestDone == nil {
		return nil
	}
	err := <-d.ingestDone
	d.ingestDone = nil
	return err
}

func (d *daemon) startServers() error {
	if d.socks.query != nil {
		opts := d.cfg.Query
		if opts.TracerProvider == nil {
			opts.TracerProvider = d.cfg.TracerProvider
		}
		if opts.Logger == nil {
			opts.Logger = d.log.With("component", "query")
		}
		d.qs = query.NewServer(d.reader, opts)
	}
	if d.socks.metrics != nil {
		d.metrics = &http.Server{Handler: d.metricsHandler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	}
	return d.startAccepting()
}

// startAccepting makes the servers accept connections, each on its own
// duplicate of its listening socket.
func (d *daemon) startAccepting() error {
	if d.qs != nil {
		ln, err := dupListener(d.socks.query)
		if err != nil {
			return fmt.Errorf("query server: %w", err)
		}
		d.qln = ln
		d.serving.Go(func() {
			if err := d.qs.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				d.log.Error("query server", "err", err)
			}
		})
	}
	if d.metrics != nil {
		ln, err := dupListener(d.socks.metrics)
		if err != nil {
			return fmt.Errorf("metrics server: %w", err)
		}
		d.mln = ln
		d.serving.Go(func() {
			if err := d.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				d.log.Error("metrics server", "err", err)
			}
		})
	}
	return nil
}

// stopAccepting closes the servers' duplicates of the listening sockets
// and waits until they accept no more. Connections already accepted go on.
// The sockets themselves stay open (d.socks holds them, and so does the
// new process of an upgrade): connections made from now on wait in the
// listen backlog for whoever accepts next, rather than being refused.
func (d *daemon) stopAccepting() {
	for _, ln := range []net.Listener{d.qln, d.mln} {
		if ln != nil {
			ln.Close()
		}
	}
	d.serving.Wait()
	d.qln, d.mln = nil, nil
}

// stopServers ends every query (followers get an end frame with their
// cursor) and waits for the servers.
func (d *daemon) stopServers(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, ShutdownTimeout)
	defer cancel()
	if d.qs != nil {
		if err := d.qs.Shutdown(ctx); err != nil {
			d.log.Warn("query server shutdown", "err", err)
		}
	}
	if d.metrics != nil {
		d.metrics.Shutdown(ctx)
	}
	d.serving.Wait()
	d.qs, d.metrics = nil, nil
	d.qln, d.mln = nil, nil
}

// dupListener returns a listener on a duplicate of l's descriptor. It
// never calls os.File.Fd on a file that net created (which would switch
// the shared socket to blocking mode): os.NewFile on a non-blocking
// descriptor leaves it non-blocking.
func dupListener(l net.Listener) (net.Listener, error) {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("duplicate listener: %T has no descriptor", l)
	}
	fd, err := sockdup.Dup(sc)
	if err != nil {
		return nil, fmt.Errorf("duplicate listener: %w", err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	defer f.Close()
	return net.FileListener(f)
}

// storeFDs puts the sockets this process bound into systemd's fd store,
// so that a plain restart gets them back, queue and all.
func (d *daemon) storeFDs() {
	if !d.notify.Enabled() {
		return
	}
	for _, f := range d.socks.named() {
		if !d.socks.bound[f.Name] {
			continue
		}
		if err := d.notify.StoreFDs(f.Name, f.File); err != nil {
			d.log.Warn("store socket in systemd's fd store", "name", f.Name, "err", err)
			continue
		}
		if f.Name == NameIngest {
			d.socketFile = "" // systemd keeps the socket, and so its file
		}
	}
}

// closeSockets closes this process's copies of the sockets, and removes the
// socket file when the socket dies with this process.
func (d *daemon) closeSockets() {
	d.socks.close()
	if d.socketFile != "" && !d.handedOver {
		os.Remove(d.socketFile)
	}
}

// statusLoop keeps STATUS= current and pings the watchdog while ingest runs.
func (d *daemon) statusLoop(ctx context.Context) {
	if !d.notify.Enabled() {
		return
	}
	var wg sync.WaitGroup
	if interval, ok := sdnotify.WatchdogInterval(); ok {
		wg.Go(func() { d.notify.Watchdog(ctx, interval/2, func() error { return nil }) })
	}
	defer wg.Wait()
	t := time.NewTicker(statusInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.notify.Status(d.status())
		}
	}
}

// status is a one-line summary for systemctl status.
func (d *daemon) status() string {
	st := d.reader.Stats() // the writer's own state belongs to the ingest goroutine
	var clients int64
	if d.qs != nil {
		clients = d.qs.Stats().ConnsOpen
	}
	return fmt.Sprintf("%d records stored; ring %d%% full, next seq %d; %d query clients",
		d.stored(), st.BytesUsed*100/st.Size, st.Head, clients)
}

func (d *daemon) stored() uint64 {
	in := d.inPtr.Load()
	if in == nil {
		return 0
	}
	var n uint64
	for _, c := range in.Stats().Datagrams {
		n += c
	}
	return n
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// metricsHandler serves /metrics, /healthz and /readyz from a registry of
// the daemon's own.
func (d *daemon) metricsHandler() http.Handler {
	qs, reader := d.qs, d.reader
	src := metrics.Sources{
		Ingest: func() ingestloop.Stats {
			if in := d.inPtr.Load(); in != nil {
				return in.Stats()
			}
			return ingestloop.Stats{}
		},
		Ring: reader.Stats,
		RingOldestTime: func() (time.Time, bool) {
			rec, _, err := reader.Cursor(reader.Latest(math.MaxUint64)).Next()
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(0, rec.Time), true
		},
		Upgrades: func() metrics.UpgradeStats {
			return metrics.UpgradeStats{Succeeded: d.upgradesOK.Load(), Failed: d.upgradesBad.Load(), HandoffSeconds: d.handoff.Seconds()}
		},
	}
	if qs != nil {
		src.Query = qs.Stats
	}
	return metrics.Handler(metrics.NewRegistry(src), func() error {
		if d.inPtr.Load() == nil {
			return errors.New("not ingesting")
		}
		return nil
	})
}
