package proctest

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// Timeout bounds every wait in this package, and the waits of tests that
// use it for a child process: a failure deadline, never a delay.
const Timeout = 60 * time.Second

// Output collects what a child process writes (assign it to exec.Cmd's
// Stdout or Stderr, or write lines to it) and wakes those waiting for it
// at every write. It is safe for concurrent use; the zero value is empty
// and ready.
type Output struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed (and replaced) by every write
}

// Write appends p and wakes the waiters. It never fails.
func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.b.Write(p)
	if o.changed != nil {
		close(o.changed)
		o.changed = nil
	}
	return len(p), nil
}

// String returns everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// Snapshot returns everything written so far and a channel closed at the
// next write.
func (o *Output) Snapshot() (string, <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.changed == nil {
		o.changed = make(chan struct{})
	}
	return o.b.String(), o.changed
}

// WaitFor waits until cond holds for everything written so far, testing
// it again at each write, and returns that text. After Timeout it fails
// the test, naming what it waited for.
func (o *Output) WaitFor(t testing.TB, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.NewTimer(Timeout)
	defer deadline.Stop()
	for {
		text, changed := o.Snapshot()
		if cond(text) {
			return text
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited %v for %s; output:\n%s", Timeout, what, text)
		}
	}
}
