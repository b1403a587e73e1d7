//go:build linux

package shmring

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
)

// TestSyncWritesOnlyWhatChanged: a Sync writes the pages of the records
// published since the last one, their descriptors and the header, and
// nothing else.
func TestSyncWritesOnlyWhatChanged(t *testing.T) {
	w, _ := newWriterForTest(t, Options{Size: MinSize, Durable: true})
	n, err := w.Sync()
	if err != nil || n != headerSize {
		t.Fatalf("sync with nothing new: %d bytes, %v; want the header's %d", n, err, headerSize)
	}
	// A record within one page: that page, one page of descriptors, the header.
	if _, err := w.Append(1, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if n, err := w.Sync(); err != nil || n != 2*int(pageSize)+headerSize {
		t.Fatalf("sync of one record: %d bytes, %v; want %d", n, err, 2*int(pageSize)+headerSize)
	}
	// A lap of the ring: everything.
	appendN(t, w, 400, 300)
	if n, err := w.Sync(); err != nil || int64(n) != w.fileSize() {
		t.Fatalf("sync after a lap: %d bytes, %v; want the whole file, %d", n, err, w.fileSize())
	}
	if st := w.SyncStats(); st.Syncs != 3 || st.Errors != 0 || st.Bytes != uint64(2*headerSize+2*int(pageSize))+uint64(w.fileSize()) {
		t.Fatalf("sync stats %+v", st)
	}
}

// TestSyncConcurrentWithAppends: Sync runs in another goroutine while the
// writer appends and closes; after Close it fails with ErrClosed. Run with
// the race detector.
func TestSyncConcurrentWithAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	w, err := OpenWriter(path, Options{Size: MinSize, Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var last error
	wg.Go(func() {
		for {
			if _, err := w.Sync(); err != nil {
				last = err
				return
			}
		}
	})
	for range 200 {
		appendN(t, w, 50, 300)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if !errors.Is(last, ErrClosed) {
		t.Fatalf("Sync after Close: %v, want ErrClosed", last)
	}
	if st := w.SyncStats(); st.Syncs == 0 || st.Errors != 0 {
		t.Fatalf("sync stats %+v", st)
	}
	// Everything is there, and the close was clean.
	w, err = OpenWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if rs := w.Recovered(); !rs.Clean || w.Stats().Head != FirstSeq+200*50 {
		t.Fatalf("after reopening: %+v, head %d", rs, w.Stats().Head)
	}
}

// TestDurableReleaseSyncs: Release of a Durable writer syncs what was added
// since the last Sync, published or not, before it marks the ring closed.
func TestDurableReleaseSyncs(t *testing.T) {
	w, _ := newWriterForTest(t, Options{Size: MinSize, Durable: true})
	if _, err := w.Add(1, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
	if st := w.SyncStats(); st.Syncs != 1 || st.Bytes != 2*uint64(pageSize)+headerSize {
		t.Fatalf("sync stats after Release: %+v", st)
	}
	// A writer without Durable does not sync.
	v, _ := newWriterForTest(t, Options{Size: MinSize})
	v.Append(1, []byte("x"))
	v.Release()
	if st := v.SyncStats(); st.Syncs != 0 {
		t.Fatalf("volatile writer synced: %+v", st)
	}
}
