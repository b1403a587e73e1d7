//go:build linux

package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/collectord/collectord/internal/upgrade"
)

// upgrade re-executes the daemon and hands it the sockets and the ring. It
// returns nil once the new process serves (the caller then exits), or an
// error after which this process serves on as before.
func (d *daemon) upgrade(ctx context.Context) error {
	if d.cfg.Exe == "" {
		return errors.New("upgrades are disabled (no executable path)")
	}
	d.notify.Reloading()
	d.log.Info("upgrade: starting the new process", "exe", d.cfg.Exe)
	child, err := upgrade.Start(d.cfg.Exe, d.cfg.Args, childEnv(d.socketFile), d.socks.named())
	if err != nil {
		return fmt.Errorf("start %s: %w", d.cfg.Exe, err)
	}
	rctx, cancel := context.WithTimeout(ctx, UpgradeReadyTimeout)
	err = child.WaitReady(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("new process %d did not initialise: %w", child.PID(), err)
	}

	// Stop accepting: from now on new query connections wait in the
	// backlog for the new process. Accepting on until the shutdown below
	// would greet clients only to tell them "shutdown" moments later.
	d.stopAccepting()
	// Strict single-writer handover: stop reading, publish, release the
	// ring lock; only then may the new process lock it and read.
	if err := d.stopIngest(); err != nil {
		d.log.Warn("ingest stopped with an error", "err", err)
	}
	stopped := time.Now()
	if err := d.w.Release(); err != nil {
		d.log.Warn("release the ring lock", "err", err)
	}
	tctx, cancel := context.WithTimeout(ctx, UpgradeTakeoverTimeout)
	err = child.Released(tctx)
	cancel()
	// Unmapping a large ring takes milliseconds: done only now, while the
	// new process already reads.
	d.closeRing()
	if err != nil {
		// The new process is gone (Released killed it): take everything back.
		if rerr := d.openRing(ctx); rerr != nil {
			return fmt.Errorf("new process failed (%v), and reopening the ring failed too: %w", err, rerr)
		}
		d.startIngest()
		if aerr := d.startAccepting(); aerr != nil {
			d.log.Error("resume accepting after a failed upgrade", "err", aerr)
		}
		return fmt.Errorf("new process %d failed to take over: %w", child.PID(), err)
	}
	d.handedOver = true
	d.upgradesOK.Add(1)
	d.log.Info("upgrade: handed over", "new_pid", child.PID(), "ingest_stopped_unix_ns", stopped.UnixNano())
	// The new process speaks to systemd from now on: no more STATUS= or
	// WATCHDOG=1 from this one after MAINPID.
	d.stopStatus()
	d.notify.Notify(fmt.Sprintf("MAINPID=%d\nREADY=1\nSTATUS=upgraded to pid %d", child.PID(), child.PID()))
	// The new process's forwarder waits for this one's to flush and let
	// go of the cursor.
	d.beginStopForward()
	// Finish in-flight batches; followers get their cursor and reconnect
	// to the new process on the same listener.
	d.stopServers(context.WithoutCancel(ctx))
	return nil
}

// envSocketFile tells the new process of an upgrade that the datagram
// socket's file is its to remove on a clean stop (the path), because this
// process or one before it bound it and systemd does not keep it.
const envSocketFile = "COLLECTORD_SOCKET_FILE"

// childEnv is the environment of the new process: the same, except that
// WATCHDOG_PID names this process and must not stop the new one from
// pinging the watchdog once it is the main process, and that
// envSocketFile passes on socketFile.
func childEnv(socketFile string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "WATCHDOG_PID=") || strings.HasPrefix(kv, envSocketFile+"=") {
			continue
		}
		env = append(env, kv)
	}
	if socketFile != "" {
		env = append(env, envSocketFile+"="+socketFile)
	}
	return env
}
