//go:build linux

package ingestloop

import (
	"fmt"
	"testing"

	"github.com/collectord/collectord/pkg/record"
)

// TestSyncUrgent: with SyncUrgent, a batch holding a record of priority
// crit, alert or emerg is synced before the next datagram is read; other
// batches are not synced. Each datagram is sent once the previous one is
// published, so each is a batch of its own, and once datagram i is
// published Run has finished with batch i-1, sync included. (That the sync
// is the real system call, on the range that holds the record, before the
// next recvmmsg, cmd/collectord's TestUrgentDurableBeforeNextDatagram
// shows by tracing the daemon.)
func TestSyncUrgent(t *testing.T) {
	h := startHarness(t, harnessOptions{Ingest: Options{SyncUrgent: true}})
	sock := dialRaw(t, h.path)
	var urgent uint64
	for i, sev := range []uint8{6, 2, 1, 0, 3, 4, 5, 7, 2, 6} {
		send(t, sock, fmt.Appendf(nil, "<%d>msg", 16*8+int(sev))) // local0
		if e := h.next1(t); e.Severity() != sev {
			t.Fatalf("datagram %d stored with severity %d, want %d", i, e.Severity(), sev)
		}
		if got := h.w.SyncStats().Syncs; got != urgent {
			t.Fatalf("datagram %d (%s) read after %d syncs, want %d: one per earlier crit, alert or emerg record",
				i, record.SeverityName(sev), got, urgent)
		}
		if sev <= UrgentSeverity {
			urgent++
		}
	}
	counts := make([]uint64, len(UrgentBuckets))
	if n, _ := h.in.UrgentLatency(counts); n != urgent {
		t.Fatalf("urgent latency histogram counts %d batches, want %d", n, urgent)
	}

	// Without SyncUrgent nothing syncs.
	h2 := startHarness(t, harnessOptions{})
	sock2 := dialRaw(t, h2.path)
	for range 3 {
		send(t, sock2, []byte("<0>emergency"))
		h2.next1(t)
	}
	if got := h2.w.SyncStats().Syncs; got != 0 {
		t.Fatalf("%d syncs without SyncUrgent", got)
	}
}
