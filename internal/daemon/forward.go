//go:build linux

package daemon

import (
	"context"
	"time"

	"github.com/collectord/collectord/internal/forward"
)

// forwardStopTimeout bounds how long stopping waits for the forwarder to
// flush: a little more than it allows itself.
const forwardStopTimeout = 7 * time.Second

// startForward starts the forwarder process when the configuration asks
// for one. During an upgrade it starts once this process serves: it then
// waits for the old process's forwarder to flush and release the cursor.
func (d *daemon) startForward() {
	if d.cfg.Forward == nil || d.fwd != nil {
		return
	}
	exe := d.cfg.Exe
	if exe == "" {
		d.log.Error("forwarding disabled: cannot find our executable to run `collectord forward`")
		return
	}
	s, err := forward.Supervise(exe, *d.cfg.Forward, d.log.With("component", "forward"))
	if err != nil {
		d.log.Error("forwarding disabled", "err", err)
		return
	}
	d.fwd = s
	d.fwdPtr.Store(s)
}

// beginStopForward starts stopping the forwarder, which flushes what the
// brokers have not acknowledged yet while the rest of the daemon stops;
// endStopForward waits for it.
func (d *daemon) beginStopForward() {
	if d.fwd == nil || d.fwdStopped != nil {
		return
	}
	fwd, done := d.fwd, make(chan struct{})
	d.fwdStopped = done
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), forwardStopTimeout)
		defer cancel()
		if err := fwd.Stop(ctx); err != nil {
			d.log.Warn("forwarder did not stop in time: killed; what it had not recorded is sent again", "err", err)
		}
	}()
}

// endStopForward stops the forwarder if nothing did, and waits for it.
func (d *daemon) endStopForward() {
	d.beginStopForward()
	if d.fwdStopped != nil {
		<-d.fwdStopped
	}
}
