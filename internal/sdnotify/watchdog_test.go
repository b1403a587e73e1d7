//go:build linux

package sdnotify

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name   string
		usec   string // "-" means unset
		pid    string // "-" means unset
		want   time.Duration
		wantOK bool
	}{
		{"unset", "-", "-", 0, false},
		{"no pid", "30000000", "-", 30 * time.Second, true},
		{"our pid", "500000", self, 500 * time.Millisecond, true},
		{"other pid", "30000000", "1", 0, false},
		{"bad pid", "30000000", "me", 0, false},
		{"zero", "0", "-", 0, false},
		{"negative", "-5", "-", 0, false},
		{"garbage", "30s", "-", 0, false},
		{"empty", "", "-", 0, false},
		{"overflow", "9223372036854775807", "-", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setOrUnset(t, "WATCHDOG_USEC", tc.usec)
			setOrUnset(t, "WATCHDOG_PID", tc.pid)
			got, ok := WatchdogInterval()
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("WatchdogInterval() = %v, %v; want %v, %v", got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// setOrUnset sets key to v for the test, or unsets it when v is "-".
func setOrUnset(t *testing.T, key, v string) {
	t.Helper()
	t.Setenv(key, v) // registers the restore
	if v == "-" {
		os.Unsetenv(key)
	}
}

func TestWatchdogPingsUntilCancelled(t *testing.T) {
	s := listenNotifyPath(t)
	n := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.Watchdog(ctx, time.Millisecond, nil)
	}()
	for range 3 {
		s.expect("WATCHDOG=1")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watchdog did not return 10s after its context was cancelled")
	}
}

// The loop skips pings while healthy fails and resumes afterwards. healthy
// itself cancels the context on its sixth call, so the count of pings is
// exact: calls 1, 2 and 5 were healthy.
func TestWatchdogSkipsPingsWhileUnhealthy(t *testing.T) {
	s := listenNotifyPath(t)
	n := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errStuck := errors.New("ingest stuck")
	calls := 0
	healthy := func() error {
		calls++
		switch calls {
		case 1, 2, 5:
			return nil
		case 6:
			cancel()
		}
		return errStuck
	}
	n.Watchdog(ctx, time.Millisecond, healthy) // returns once cancelled
	if calls != 6 {
		t.Fatalf("healthy called %d times, want 6", calls)
	}
	for range 3 {
		s.expect("WATCHDOG=1")
	}
	s.expectEmpty()
}

func TestWatchdogReturnsAtOnce(t *testing.T) {
	ctx := context.Background() // never done: Watchdog must not wait for it
	t.Run("disabled", func(t *testing.T) {
		t.Setenv("NOTIFY_SOCKET", "")
		New().Watchdog(ctx, time.Millisecond, func() error {
			t.Error("healthy called on a disabled notifier")
			return nil
		})
	})
	t.Run("zero interval", func(t *testing.T) {
		s := listenNotifyPath(t)
		New().Watchdog(ctx, 0, nil)
		s.expectEmpty()
	})
	t.Run("cancelled", func(t *testing.T) {
		s := listenNotifyPath(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		New().Watchdog(cctx, time.Millisecond, nil)
		s.expectEmpty()
	})
}
