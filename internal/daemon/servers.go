//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/collectord/collectord/internal/metrics"
	"github.com/collectord/collectord/internal/sockdup"
	"github.com/collectord/collectord/pkg/query"
)

func (d *daemon) startServers() error {
	// Stats requests read the registry the metrics endpoint serves, made
	// once the query server it counts exists.
	var regp atomic.Pointer[prometheus.Registry]
	if d.socks.query != nil || d.socks.queryLocal != nil {
		opts := d.cfg.Query
		if opts.TracerProvider == nil {
			opts.TracerProvider = d.cfg.TracerProvider
		}
		if opts.Logger == nil {
			opts.Logger = d.log.With("component", "query")
		}
		d.readers(&opts)
		opts.Arrivals = d.arrivals
		log := opts.Logger
		opts.Stats = func(a query.Access) []query.Sample { return metrics.Samples(regp.Load(), a, log) }
		d.qs = query.NewServer(d.reader, opts)
	}
	reg := metrics.NewRegistry(d.metricsSources(d.qs))
	regp.Store(reg)
	if d.socks.metrics != nil {
		d.metrics = &http.Server{Handler: metrics.Handler(reg, d.ingestHealth), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelWarn)}
	}
	return d.startAccepting()
}

// startAccepting makes the servers accept connections, each on its own
// duplicate of its listening socket.
func (d *daemon) startAccepting() error {
	for _, q := range []struct {
		sock net.Listener
		dup  *net.Listener
	}{{d.socks.query, &d.qln}, {d.socks.queryLocal, &d.qlln}} {
		if d.qs == nil || q.sock == nil {
			continue
		}
		ln, err := dupListener(q.sock)
		if err != nil {
			return fmt.Errorf("query server: %w", err)
		}
		*q.dup = ln
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
	for _, ln := range []net.Listener{d.qln, d.qlln, d.mln} {
		if ln != nil {
			ln.Close()
		}
	}
	d.serving.Wait()
	d.qln, d.qlln, d.mln = nil, nil, nil
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
	d.qln, d.qlln, d.mln = nil, nil, nil
}

// readers adds to opts the local users who read every record, as they may
// read the ring file: the daemon's own user, and the ring file's group
// (ring_group, or the daemon's group when none is configured).
func (d *daemon) readers(opts *query.Options) {
	opts.ReaderUIDs = append(slices.Clone(opts.ReaderUIDs), uint32(os.Geteuid()))
	opts.ReaderGroups = slices.Clone(opts.ReaderGroups)
	if st, err := os.Stat(d.cfg.Ring); err == nil {
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			opts.ReaderGroups = append(opts.ReaderGroups, sys.Gid)
		}
	} else {
		d.log.Warn("the ring's group cannot be read: only root, the daemon's user and query_all_groups read every record on the local socket", "err", err)
	}
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

// addrOf is l's address, or "" when l is nil (the server is off).
func addrOf(l net.Listener) string {
	if l == nil {
		return ""
	}
	return l.Addr().String()
}
