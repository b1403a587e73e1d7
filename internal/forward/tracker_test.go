package forward

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestTrackerInOrder(t *testing.T) {
	tr := newTracker(1)
	if done, _ := tr.position(); done != 0 {
		t.Fatalf("empty: done = %d, want 0", done)
	}
	for s := uint64(1); s <= 5; s++ {
		tr.sent(s, int64(s*10))
	}
	if done, oldest := tr.position(); done != 0 || oldest != 10 {
		t.Fatalf("five pending: done %d oldest %d, want 0, 10", done, oldest)
	}
	tr.acked(2)
	tr.acked(3)
	if done, _ := tr.position(); done != 0 {
		t.Errorf("2 and 3 acked, 1 pending: done = %d, want 0", done)
	}
	tr.acked(1)
	if done, oldest := tr.position(); done != 3 || oldest != 40 {
		t.Errorf("1..3 acked: done %d oldest %d, want 3, 40", done, oldest)
	}
	tr.acked(5)
	tr.acked(4)
	if done, oldest := tr.position(); done != 5 || oldest != 0 {
		t.Errorf("all acked: done %d oldest %d, want 5, 0", done, oldest)
	}
	if tr.acked(4) {
		t.Error("acked(4) twice reported true")
	}
}

// Skipped (lost) records count as done once nothing before them is
// pending, never before.
func TestTrackerSkipped(t *testing.T) {
	tr := newTracker(1)
	tr.sent(1, 1)
	tr.skipped(10) // 2..9 lost
	tr.sent(10, 10)
	if done, _ := tr.position(); done != 0 {
		t.Errorf("1 pending: done = %d", done)
	}
	tr.acked(1)
	if done, _ := tr.position(); done != 9 {
		t.Errorf("1 acked, 2..9 lost, 10 pending: done = %d, want 9", done)
	}
	tr.acked(10)
	tr.skipped(20)
	if done, _ := tr.position(); done != 19 {
		t.Errorf("all done through 19: done = %d", done)
	}
}

// Random acknowledgement order over many records, with growth: the
// position is always the longest acknowledged prefix.
func TestTrackerRandom(t *testing.T) {
	tr := newTracker(1)
	const n = 5000
	for s := uint64(1); s <= n; s++ {
		tr.sent(s, int64(s))
	}
	order := rand.Perm(n)
	ackedSet := make([]bool, n+1)
	prefix := uint64(0)
	for _, i := range order {
		s := uint64(i + 1)
		if !tr.acked(s) {
			t.Fatalf("acked(%d) = false", s)
		}
		ackedSet[s] = true
		for prefix < n && ackedSet[prefix+1] {
			prefix++
		}
		if done, _ := tr.position(); done != prefix {
			t.Fatalf("after acking %d: done = %d, want %d", s, done, prefix)
		}
	}
	if tr.pending() != 0 {
		t.Errorf("pending = %d after all acked", tr.pending())
	}
}

func TestTrackerReset(t *testing.T) {
	tr := newTracker(1)
	for seq := uint64(1); seq <= 5; seq++ {
		tr.sent(seq, int64(seq))
	}
	tr.acked(1)
	tr.acked(3)
	tr.acked(5)
	if got := tr.reset(2); !slices.Equal(got, []uint64{3, 5}) {
		t.Errorf("reset(2) returned %v as acknowledged behind the first pending, want [3 5]", got)
	}
	if tr.acked(2) {
		t.Error("a promise for a record sent before the reset was accepted")
	}
	if done, _ := tr.position(); done != 1 {
		t.Errorf("after reset(2): done = %d, want 1", done)
	}
}
