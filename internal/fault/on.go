//go:build faultinject

package fault

import (
	"os"
	"strconv"
	"syscall"
	"time"
)

// Enabled reports whether the binary was built with faultinject.
const Enabled = true

var (
	stallLimit    = envDuration("COLLECTORD_FAULT_STALL_LIMIT")
	takeoverDelay = envDuration("COLLECTORD_FAULT_TAKEOVER_DELAY")
	flushKill, _  = strconv.ParseUint(os.Getenv("COLLECTORD_FAULT_FLUSH_KILL"), 10, 64)
)

func envDuration(key string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(key))
	return d
}

// Ingest wedges the calling goroutine forever when msg is WedgeMessage.
func Ingest(msg []byte) {
	if string(msg) == WedgeMessage {
		select {}
	}
}

// StallLimit returns COLLECTORD_FAULT_STALL_LIMIT if set, else d.
func StallLimit(d time.Duration) time.Duration {
	if stallLimit > 0 {
		return stallLimit
	}
	return d
}

// TakeoverDelay returns COLLECTORD_FAULT_TAKEOVER_DELAY.
func TakeoverDelay() time.Duration { return takeoverDelay }

// Flushed kills the process with SIGKILL when n is
// COLLECTORD_FAULT_FLUSH_KILL.
func Flushed(n uint64) {
	if n == flushKill {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
