//go:build linux

package ingestloop

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

// arrivalLog records what an Ingester tells its Arrivals.
type arrivalLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *arrivalLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *arrivalLog) Start(head uint64) { l.add(fmt.Sprintf("start %d", head)) }
func (l *arrivalLog) Published(uids []uint32, head uint64) {
	l.add(fmt.Sprintf("published %v %d", slices.Compact(slices.Sorted(slices.Values(uids))), head))
}
func (l *arrivalLog) Stop() { l.add("stop") }

func (l *arrivalLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.calls)
}

// TestIngestArrivals: Run tells Options.Arrivals where the ring's head was
// when it began, the senders' uids and the head after each batch it
// publishes, and when it ends.
func TestIngestArrivals(t *testing.T) {
	log := &arrivalLog{}
	h := startHarness(t, harnessOptions{Ingest: Options{Arrivals: log}})
	sock := dialRaw(t, h.path)
	for i := range 3 {
		send(t, sock, fmt.Appendf(nil, "<13>test: arrival %d", i))
	}
	recs := h.nextRecords(t, 3)
	head := recs[2].Seq + 1
	want := fmt.Sprintf("published [%d] %d", os.Getuid(), head)
	deadline := time.Now().Add(waitTimeout)
	for !slices.Contains(log.snapshot(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("calls %q, want one %q", log.snapshot(), want)
		}
		time.Sleep(time.Millisecond)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	calls := log.snapshot()
	if calls[0] != "start 1" || calls[len(calls)-1] != "stop" {
		t.Fatalf("calls %q, want start 1 first and stop last", calls)
	}
	for _, c := range calls[1 : len(calls)-1] {
		var uids string
		var n uint64
		if _, err := fmt.Sscanf(c, "published %s %d", &uids, &n); err != nil || uids != fmt.Sprintf("[%d]", os.Getuid()) || n > head {
			t.Errorf("call %q: want published [%d] with a head of at most %d", c, os.Getuid(), head)
		}
	}
}
