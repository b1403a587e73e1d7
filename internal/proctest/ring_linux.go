package proctest

import (
	"context"
	"errors"
	"testing"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// Record is a record read back from a ring.
type Record struct {
	Seq uint64
	record.Entry
}

// ReadRing returns every record in the ring at path, decoded, oldest
// first. It fails the test if a record is lost or damaged meanwhile.
func ReadRing(t testing.TB, path string) []Record {
	t.Helper()
	r, err := shmring.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []Record
	c := r.Cursor(0)
	for {
		rec, lost, err := c.Next()
		if errors.Is(err, shmring.ErrNoRecord) {
			return out
		}
		if err != nil || lost != 0 {
			t.Fatalf("read ring: lost %d, %v", lost, err)
		}
		var e record.Entry
		if err := record.Decode(append([]byte(nil), rec.Payload...), &e); err != nil {
			t.Fatalf("seq %d: %v", rec.Seq, err)
		}
		out = append(out, Record{rec.Seq, e})
	}
}

// RingState returns the sequence numbers of the ring's oldest record and
// of the next record it will store (its head).
func RingState(t testing.TB, path string) (oldest, head uint64) {
	t.Helper()
	r, err := shmring.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st := r.Stats()
	return st.Oldest, st.Head
}

// WaitHead waits, on the ring's futex, until the record before head is
// stored, and returns the ring's state then. After Timeout it fails the
// test.
func WaitHead(t testing.TB, path string, head uint64) (oldest, newHead uint64) {
	t.Helper()
	r, err := shmring.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if head > shmring.FirstSeq {
		if err := r.Wait(ctx, head-1); err != nil {
			t.Fatalf("ring head %d, waiting for %d: %v", r.Head(), head, err)
		}
	}
	st := r.Stats()
	return st.Oldest, st.Head
}
