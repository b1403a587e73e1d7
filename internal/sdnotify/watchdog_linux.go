//go:build linux

package sdnotify

import (
	"context"
	"math"
	"os"
	"strconv"
	"time"
)

// WatchdogInterval reports the watchdog timeout systemd expects this
// process to honour (WatchdogSec= in the unit, passed as $WATCHDOG_USEC).
//
// It returns (timeout, true) when the variable holds a positive number of
// microseconds and $WATCHDOG_PID is either unset or this process's pid. It
// returns (0, false) otherwise: no watchdog, a malformed or zero value, or a
// $WATCHDOG_PID naming another process (the variable was inherited from a
// parent and is not meant for us). The caller should ping at half the
// timeout, as sd_watchdog_enabled(3) recommends:
//
//	if d, ok := sdnotify.WatchdogInterval(); ok {
//		go n.Watchdog(ctx, d/2, healthy) // with a WaitGroup, see Watchdog
//	}
//
// In-place upgrades: systemd sets $WATCHDOG_PID to the process it started.
// The process that re-executes the daemon should drop WATCHDOG_PID (and
// keep WATCHDOG_USEC) from the new process's environment; otherwise the new
// process, once main, sees a foreign pid here, never pings, and systemd
// kills the service when the timeout expires.
func WatchdogInterval() (time.Duration, bool) {
	s, ok := os.LookupEnv("WATCHDOG_USEC")
	if !ok {
		return 0, false
	}
	usec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || usec <= 0 || usec > math.MaxInt64/int64(time.Microsecond) {
		return 0, false
	}
	if p, ok := os.LookupEnv("WATCHDOG_PID"); ok {
		pid, err := strconv.Atoi(p)
		if err != nil || pid != os.Getpid() {
			return 0, false
		}
	}
	return time.Duration(usec) * time.Microsecond, true
}

// Watchdog sends WATCHDOG=1 right away and then every interval, for as long
// as ctx is not done, skipping every ping for which healthy returns an
// error (a nil healthy counts as always healthy). It returns when ctx is
// done, or at once if n is disabled or interval is not positive.
//
// The caller owns the goroutine that runs Watchdog and waits for it:
//
//	wg.Add(1)
//	go func() { defer wg.Done(); n.Watchdog(ctx, d/2, healthy) }()
//	...
//	cancel(); wg.Wait()
//
// healthy runs on that goroutine before every ping and should return
// quickly; one that blocks stops the pings, which is what a watchdog is
// for. A failing check does not end the loop: pings resume when healthy
// returns nil again, and if it keeps failing systemd applies the unit's
// WatchdogSec= action. Send errors are ignored (the next tick tries again);
// healthy is the place to log.
func (n *Notifier) Watchdog(ctx context.Context, interval time.Duration, healthy func() error) {
	if !n.Enabled() || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for ctx.Err() == nil {
		if healthy == nil || healthy() == nil {
			_ = n.Notify("WATCHDOG=1")
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}
