//go:build linux

package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/collectord/collectord/internal/sdnotify"
	"github.com/coreos/go-systemd/v22/activation"
)

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

// statusLoop keeps STATUS= current and pings the watchdog while ingest
// makes progress.
func (d *daemon) statusLoop(ctx context.Context) {
	if !d.notify.Enabled() {
		return
	}
	var wg sync.WaitGroup
	if interval, ok := sdnotify.WatchdogInterval(); ok {
		wg.Go(func() { d.notify.Watchdog(ctx, interval/2, d.watchdogHealth) })
	}
	defer wg.Wait()
	every(ctx, statusInterval, func() { d.notify.Status(d.status()) })
}

// every calls f every interval until ctx is done.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// watchdogHealth is ingestHealth, logged when it fails: a missed ping is
// worth a line, since systemd may act on it.
func (d *daemon) watchdogHealth() error {
	err := d.ingestHealth()
	if err != nil {
		d.log.Warn("not pinging the watchdog", "err", err)
	}
	return err
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

// oneLine makes s fit on one STATUS= line.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
