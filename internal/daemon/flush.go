//go:build linux

package daemon

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/collectord/collectord/internal/fault"
	"github.com/collectord/collectord/pkg/shmring"
)

// flushBatch is how many records the flush publishes at a time.
const flushBatch = 256

// flushMarker is the file beside a volatile ring, named by markerPath,
// that says how far a flush of it got. It exists only while one runs, or
// after one was cut short.
type flushMarker struct {
	// Volatile and Ring identify the two rings by their creation time
	// (Unix nanoseconds): a marker about other rings is ignored.
	Volatile int64 `json:"volatile_created"`
	Ring     int64 `json:"ring_created"`
	// The flush started copying the volatile ring's record Next when the
	// persistent ring's head was Head: its records from Head on are
	// copies of the volatile ones from Next on.
	Next uint64 `json:"next"`
	Head uint64 `json:"head"`
}

func markerPath(volatile string) string { return volatile + ".flushing" }

// flushVolatile moves the records of the volatile ring d.cfg.FlushFrom
// (kept in /run by a daemon that ran before /var was mounted, or with
// storage = "volatile") into the persistent ring, as journald flushes
// /run/log/journal into /var/log/journal: in order, with their receive
// times, numbered after the persistent ring's records. It runs at start,
// before ingest, with the volatile ring's writer lock held, so nothing
// else changes it meanwhile.
//
// Once, even across a crash: before copying, a marker beside the volatile
// ring records where the copy starts in both rings; the copy is synced,
// then the volatile ring is removed, then the marker. A start that finds
// the marker resumes after what the persistent ring already holds (a
// killed daemon's records survive in the page cache, and the persistent
// ring recovers them); one that finds the marker and no volatile ring
// only removes the marker. A power cut takes the volatile ring in /run,
// and the marker with it.
//
// Failures are logged, never fatal: the daemon starts with the
// persistent ring as it is, and the volatile ring stays for the next
// start.
func (d *daemon) flushVolatile() {
	src := d.cfg.FlushFrom
	if src == "" {
		return
	}
	log := d.log.With("volatile_ring", src, "ring", d.cfg.Ring)
	vst, err := os.Stat(src)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.Remove(markerPath(src)); err == nil {
			log.Info("removed the marker of a finished flush of the volatile ring")
		}
		return
	}
	if st, serr := os.Stat(d.cfg.Ring); err == nil && serr == nil && os.SameFile(vst, st) {
		return // one ring under two names: nothing to move
	}
	n, err := d.copyVolatile(src)
	if err != nil {
		log.Warn("volatile ring not moved into the persistent ring; the next start tries again", "copied", n, "err", err)
		return
	}
	log.Info("moved the volatile ring's records into the persistent ring", "records", n, "next_seq", d.w.Stats().Head)
}

// copyVolatile does flushVolatile's work and returns how many records it
// copied.
func (d *daemon) copyVolatile(src string) (uint64, error) {
	vw, err := shmring.OpenWriter(src, shmring.Options{}) // the lock: nobody writes it meanwhile
	if err != nil {
		return 0, err
	}
	defer vw.Close()
	vr, err := shmring.OpenReader(src)
	if err != nil {
		return 0, err
	}
	defer vr.Close()
	vst := vr.Stats()
	m := flushMarker{
		Volatile: vst.Created.UnixNano(),
		Ring:     d.w.Stats().Created.UnixNano(),
		Next:     vst.Oldest,
		Head:     d.w.Stats().Head,
	}
	if prev, err := readMarker(src); err == nil && prev.Volatile == m.Volatile && prev.Ring == m.Ring {
		// A flush was cut short: what the persistent ring got past its
		// head then is the volatile ring's records from where it started.
		done := uint64(0)
		if m.Head > prev.Head {
			done = m.Head - prev.Head
		}
		m.Next = min(max(prev.Next+done, vst.Oldest), vst.Head)
	}
	if err := writeMarker(src, m); err != nil {
		return 0, err
	}
	c := vr.Cursor(m.Next)
	var copied, skipped uint64
	for {
		rec, lost, err := c.Next()
		skipped += lost
		if errors.Is(err, shmring.ErrNoRecord) {
			break
		}
		if err != nil {
			return copied, err
		}
		if _, err := d.w.Add(rec.Time, rec.Payload); err != nil {
			skipped++ // larger than a record of the persistent ring
			continue
		}
		copied++
		if copied%flushBatch == 0 {
			d.w.Publish()
		}
		fault.Flushed(copied)
	}
	d.w.Publish()
	if skipped > 0 {
		d.log.Warn("volatile ring: records damaged or too large for the persistent ring were not moved", "skipped", skipped)
	}
	if _, err := d.w.Sync(); err != nil {
		return copied, err
	}
	if err := os.Remove(src); err != nil {
		return copied, fmt.Errorf("remove the volatile ring: %w", err)
	}
	return copied, os.Remove(markerPath(src))
}

func readMarker(volatile string) (flushMarker, error) {
	var m flushMarker
	b, err := os.ReadFile(markerPath(volatile))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

// writeMarker replaces the marker atomically and durably.
func writeMarker(volatile string, m flushMarker) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	path := markerPath(volatile)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("write flush marker: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write flush marker: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write flush marker: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write flush marker: %w", err)
	}
	return nil
}
