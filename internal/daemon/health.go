//go:build linux

package daemon

import (
	"math"
	"time"

	"github.com/collectord/collectord/internal/ingestloop"
	"github.com/collectord/collectord/internal/metrics"
	"github.com/collectord/collectord/pkg/query"
)

// metricsSources are what the daemon's registry reads at each scrape and
// stats request; qs may be nil (no query server).
func (d *daemon) metricsSources(qs *query.Server) metrics.Sources {
	reader := d.reader
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
	if d.cfg.Durable {
		src.Durable = func() metrics.DurableStats {
			var ds metrics.DurableStats
			if w := d.wPtr.Load(); w != nil {
				ds.SyncStats = w.SyncStats()
			}
			ds.Urgent.Counts = make([]uint64, len(ingestloop.UrgentBuckets))
			if in := d.inPtr.Load(); in != nil {
				ds.Urgent.Count, ds.Urgent.Sum = in.UrgentLatency(ds.Urgent.Counts)
			}
			return ds
		}
	}
	if d.cfg.Forward != nil {
		src.Forward = func() metrics.ForwardStats {
			var fs metrics.ForwardStats
			if s := d.fwdPtr.Load(); s != nil {
				fs.Stats, fs.Running, fs.Restarts = s.Stats()
			}
			return fs
		}
	}
	return src
}

// ingestHealth is nil while the ingest loop makes progress: it waits for
// datagrams, or stores a batch it started less than the stall limit ago.
// It fails when ingest is not running (before it starts, during a
// handover, after a stop) or is stuck. /readyz answers with it, and the
// systemd watchdog is pinged only while it is nil.
func (d *daemon) ingestHealth() error {
	in := d.inPtr.Load()
	if in == nil {
		return ingestloop.ErrNotRunning
	}
	return in.Health(d.stallLimit)
}
