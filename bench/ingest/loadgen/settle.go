//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Settling: for a receiver that offers no way to ask whether it has stored
// everything (busybox syslogd, rsyslog, journald), loadgen watches the
// receiver's process instead. While it still has datagrams to take from
// the socket or records to write, it runs; once it has run less than a
// fifth of a CPU in every sampling interval for the quiet period, it is
// done, and the datagrams count as stored at the end of the last busy
// interval. A daemon's occasional timer work is too short to look busy.
const (
	settleInterval = 5 * time.Millisecond
	settleBusy     = settleInterval / 5 // CPU time that makes an interval busy
)

// settle waits until process pid has been idle for quiet and returns when
// it was last busy; it starts counting from since (the last send). It gives
// up after timeout.
func settle(pid int, since time.Time, quiet, timeout time.Duration) (time.Time, error) {
	last, err := cpuTime(pid)
	if err != nil {
		return time.Time{}, err
	}
	busy, prev := since, time.Now()
	for {
		time.Sleep(settleInterval)
		now := time.Now()
		cpu, err := cpuTime(pid)
		if err != nil {
			return time.Time{}, err
		}
		// Scaled to the interval that really passed: a late wake-up of
		// this loop must not make an idle receiver look busy.
		if cpu-last >= settleBusy*now.Sub(prev)/settleInterval {
			busy = now
		}
		last, prev = cpu, now
		switch {
		case now.Sub(busy) >= quiet:
			return busy, nil
		case now.Sub(since) >= timeout:
			return time.Time{}, fmt.Errorf("process %d still busy %v after the last send", pid, timeout)
		}
	}
}

// cpuTime returns the CPU time all threads of process pid have run, from
// the first field of each /proc/PID/task/TID/schedstat (nanoseconds).
func cpuTime(pid int) (time.Duration, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("read threads of process %d: %w", pid, err)
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if os.IsNotExist(err) {
			continue // the thread has exited
		}
		if err != nil {
			return 0, err
		}
		f, _, _ := bytes.Cut(b, []byte(" "))
		ns, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s/%s/schedstat: %w", dir, t.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}
