package histogram

import (
	"sync"
	"testing"
	"time"
)

func TestHistogram(t *testing.T) {
	h := New([]float64{0.001, 0.01, 0.1})
	for _, d := range []time.Duration{500 * time.Microsecond, time.Millisecond, 5 * time.Millisecond, 50 * time.Millisecond, time.Second} {
		h.Observe(d)
	}
	counts := make([]uint64, 3)
	count, sum := h.Snapshot(counts)
	if want := []uint64{2, 3, 4}; counts[0] != want[0] || counts[1] != want[1] || counts[2] != want[2] {
		t.Errorf("cumulative counts %v, want %v", counts, want)
	}
	if count != 5 || sum < 1.0565 || sum > 1.0566 {
		t.Errorf("count %d sum %v, want 5 and 1.0565", count, sum)
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := New([]float64{1})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.Observe(time.Millisecond)
			}
		})
	}
	wg.Wait()
	counts := make([]uint64, 1)
	if count, _ := h.Snapshot(counts); count != 8000 || counts[0] != 8000 {
		t.Errorf("count %d, bucket %d, want 8000", count, counts[0])
	}
}

func TestObserveAllocs(t *testing.T) {
	h := New([]float64{0.001, 1})
	if n := testing.AllocsPerRun(100, func() { h.Observe(time.Millisecond) }); n != 0 {
		t.Errorf("Observe: %v allocations", n)
	}
}
