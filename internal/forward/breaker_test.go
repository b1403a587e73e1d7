package forward

import (
	"testing"
	"time"
)

func TestBreaker(t *testing.T) {
	b := newBreaker(3, time.Second, 8*time.Second)
	b.rand = func() float64 { return 1 } // no jitter: the whole backoff
	for i := range 2 {
		if b.failure() {
			t.Fatalf("opened after %d failures, before 3", i+1)
		}
	}
	b.success()
	for i := range 2 {
		if b.failure() {
			t.Fatalf("opened after a success and %d failures: the success did not reset the count", i+1)
		}
	}
	if !b.failure() {
		t.Fatal("did not open after 3 failures")
	}
	var got []time.Duration
	for range 5 {
		got = append(got, b.openFor())
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoffs %v, want %v", got, want)
		}
	}
	b.success()
	if d := b.openFor(); d != time.Second {
		t.Errorf("after success the backoff is %v, want 1s", d)
	}
	b.rand = func() float64 { return 0 }
	if d := b.openFor(); d != time.Second {
		t.Errorf("jitter 0 of 2s: %v, want 1s (half)", d)
	}
}
