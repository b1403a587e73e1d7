//go:build linux

package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/collectord/collectord/internal/dgram"
	"github.com/collectord/collectord/internal/fault"
	"github.com/collectord/collectord/internal/forward"
	"github.com/collectord/collectord/internal/ingestloop"
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
	// ingestStallLimit is how long the ingest loop may spend on one batch
	// before the daemon counts it as stuck: /readyz fails and the systemd
	// watchdog is no longer pinged. A batch normally takes microseconds.
	ingestStallLimit = 10 * time.Second
	// DefaultSyncInterval is how often a durable ring is synced.
	DefaultSyncInterval = 5 * time.Second
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

	// Durable keeps the ring consistent on a disk across power loss
	// (shmring.Options.Durable): it is synced every SyncInterval, records
	// of priority crit and worse are synced before the next datagram is
	// read, and stopping and handing over sync before they return.
	Durable      bool
	SyncInterval time.Duration // default DefaultSyncInterval
	// FlushFrom, with Durable, is the volatile ring whose records are
	// moved into Ring at start (see flushVolatile); "" for none.
	FlushFrom string

	QueryAddr string // "" disables the query server (unless a socket is passed)
	// QuerySocket is the local query socket's path, a UNIX stream socket
	// anyone may connect to; "" disables it (unless a socket is passed).
	// On it, root, the daemon's user, the members of the ring file's
	// group and of Query.ReaderGroups read every record, other users
	// their own.
	QuerySocket string
	// QueryInsecure allows a query socket on an address other than
	// loopback with neither Query.TLSConfig nor Query.Tokens set; without
	// it Run refuses to start, whether it bound the socket or was passed it.
	QueryInsecure bool
	MetricsAddr   string // "" disables the metrics server (unless a socket is passed)
	// TracerProvider traces query requests; nil means no tracing.
	TracerProvider trace.TracerProvider

	PIDFile string // written atomically by whichever process serves; "" for none

	// Forward, if not nil, runs the Kafka forwarder (`Exe forward`).
	Forward *forward.Config

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
	d := &daemon{cfg: cfg, log: cfg.Logger, notify: sdnotify.New(), stallLimit: fault.StallLimit(ingestStallLimit), arrivals: query.NewArrivals()}
	return d.run(ctx, reload)
}

// daemon is the state of one serving process. Its fields are owned by the
// goroutine in run; the goroutines it starts are stopped before run returns.
type daemon struct {
	cfg    Config
	log    *slog.Logger
	notify *sdnotify.Notifier

	socks        *sockets
	w            *shmring.Writer
	wPtr         atomic.Pointer[shmring.Writer] // w, for the metrics goroutines
	stopPopulate func()                         // stops w.Populate and waits for it
	stopSync     func()                         // stops the periodic sync and waits for it; nil when none runs

	// arrivals carries the senders of what ingest publishes to the query
	// server's follows of one user's records.
	arrivals      *query.Arrivals
	in            *ingestloop.Ingester
	inPtr         atomic.Pointer[ingestloop.Ingester] // in, for the status and metrics goroutines
	stallLimit    time.Duration                       // see ingestStallLimit
	upgradesOK    atomic.Uint64
	upgradesBad   atomic.Uint64
	handoff       time.Duration // the gap before this process read, if it took over
	ingestCancel  context.CancelFunc
	ingestDone    chan error
	ingestStarted time.Time

	reader  *shmring.Reader // the published state, for queries and status
	qs      *query.Server
	metrics *http.Server
	// qln, qlln and mln are the servers' own copies of the query (TCP and
	// local) and metrics sockets, closed to stop accepting while the
	// sockets stay open.
	qln, qlln, mln net.Listener
	serving        sync.WaitGroup // Serve goroutines of qs and metrics

	stopStatus func() // stops statusLoop and waits for it; idempotent

	fwd        *forward.Supervisor                // the forwarder, when configured
	fwdPtr     atomic.Pointer[forward.Supervisor] // fwd, for the metrics goroutines
	fwdStopped chan struct{}                      // closed once fwd stopped; nil until stopping

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
		if delay := fault.TakeoverDelay(); delay > 0 {
			time.Sleep(delay) // tests only: a slow takeover (internal/fault)
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
	defer d.endStopForward() // runs after stopServers: the forwarder flushed meanwhile
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
	d.startForward()
	d.log.Info("collectord ready", "socket", d.cfg.Socket, "query_addr", addrOf(d.socks.query),
		"query_socket", addrOf(d.socks.queryLocal), "metrics_addr", addrOf(d.socks.metrics), "pid", os.Getpid())

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
			d.beginStopForward()
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
	w, err := shmring.OpenWriter(d.cfg.Ring, shmring.Options{Size: d.cfg.RingSize, Mode: d.cfg.RingMode, Group: d.cfg.RingGroup, Durable: d.cfg.Durable})
	if err == nil {
		d.w = w
		d.wPtr.Store(w)
		d.flushVolatile()
	}
	close(done)
	extender.Wait()
	if err != nil {
		return err
	}
	if d.reader == nil {
		if d.reader, err = shmring.OpenReader(d.cfg.Ring); err != nil {
			w.Close()
			return err
		}
	}
	d.stopPopulate = populate(w, d.log)
	rs, st := w.Recovered(), w.Stats()
	d.log.Info("ring open", "path", d.cfg.Ring, "durable", d.cfg.Durable, "size", st.Size, "created", rs.Created, "clean", rs.Clean,
		"records", rs.Records, "damaged", rs.Damaged, "adopted", rs.Unpublished, "rebuilt", rs.Rebuilt, "next_seq", st.Head)
	return nil
}

// closeRing closes the ring writer; a durable one syncs first.
func (d *daemon) closeRing() {
	if d.stopPopulate != nil {
		d.stopPopulate() // before the ring is unmapped
		d.stopPopulate = nil
	}
	if d.w != nil {
		if err := d.w.Close(); err != nil {
			d.log.Error("close the ring", "err", err)
		}
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
	in, err := ingestloop.New(d.socks.ingest, d.w, ingestloop.Options{BatchSize: d.cfg.Batch, MaxMessage: d.cfg.MaxMessage, Logger: d.log, RateLimit: d.cfg.RateLimit,
		SyncUrgent: d.cfg.Durable, Arrivals: d.arrivals})
	if err != nil {
		// Options were validated; a failure here is a bug worth stopping for.
		panic(fmt.Sprintf("ingestloop.New: %v", err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	d.in, d.ingestCancel, d.ingestDone = in, cancel, make(chan error, 1)
	d.inPtr.Store(in)
	d.ingestStarted = time.Now()
	go func() { d.ingestDone <- in.Run(ctx) }()
	d.startSync()
}

// stopIngest stops reading and returns once everything read is published.
// (The ring is synced when it is released or closed.)
func (d *daemon) stopIngest() error {
	if d.stopSync != nil {
		d.stopSync()
		d.stopSync = nil
	}
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
