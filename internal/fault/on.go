//go:build faultinject

package fault

import (
	"os"
	"time"
)

// Enabled reports whether the binary was built with faultinject.
const Enabled = true

var (
	stallLimit    = envDuration("COLLECTORD_FAULT_STALL_LIMIT")
	takeoverDelay = envDuration("COLLECTORD_FAULT_TAKEOVER_DELAY")
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
