//go:build !faultinject

package fault

import "time"

// Enabled reports whether the binary was built with faultinject.
const Enabled = false

// Ingest is called by the ingest loop with each message it stores.
func Ingest([]byte) {}

// StallLimit returns d.
func StallLimit(d time.Duration) time.Duration { return d }

// TakeoverDelay returns 0.
func TakeoverDelay() time.Duration { return 0 }

// Flushed is called after each record copied from a volatile ring into
// the persistent one, with how many were copied so far.
func Flushed(uint64) {}
