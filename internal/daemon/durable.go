//go:build linux

package daemon

import (
	"context"
	"time"
)

// startSync syncs a durable ring every SyncInterval, in a goroutine of its
// own (shmring.Writer.Sync may run beside the ingest loop's appends),
// until stopIngest stops it.
func (d *daemon) startSync() {
	if !d.cfg.Durable {
		return
	}
	interval := d.cfg.SyncInterval
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	w, log := d.w, d.log
	go func() {
		defer close(done)
		every(ctx, interval, func() {
			start := time.Now()
			n, err := w.Sync()
			if err != nil {
				log.Error("sync the ring: records since the last sync may not survive a power cut", "err", err)
				return
			}
			log.Debug("ring synced", "bytes", n, "took_us", time.Since(start).Microseconds())
		})
	}()
	d.stopSync = func() {
		cancel()
		<-done
	}
}
