package shmring

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// leadingNow reports whether a Wait caller sleeps in FUTEX_WAIT.
func (r *Reader) leadingNow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.leading
}

// TestLocal: with a Local shared by the writer and a reader, Wait callers
// sleep on it, not in FUTEX_WAIT, and every Publish wakes them; once the
// writer is released they go back to the futex, and a writer in another
// role (here a takeover by a new Writer without the Local) still wakes
// them; Close ends their Wait.
func TestLocal(t *testing.T) {
	w, path := newWriterForTest(t, Options{Size: MinSize})
	r := newReaderForTest(t, path)
	l := NewLocal()
	w.SetLocal(l)
	r.SetLocal(l)

	for round := range 3 {
		next := r.Head()
		var wg sync.WaitGroup
		errs := make(chan error, 10)
		for range 10 {
			wg.Go(func() { errs <- r.Wait(context.Background(), next) })
		}
		time.Sleep(20 * time.Millisecond)
		if r.leadingNow() {
			t.Fatalf("round %d: a Wait caller sleeps in FUTEX_WAIT with the writer attached", round)
		}
		w.Append(1, []byte("wake"))
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	// Released: back to the futex, woken by whoever writes next.
	next := r.Head()
	done := make(chan error, 1)
	go func() { done <- r.Wait(context.Background(), next) }()
	if err := w.Release(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !r.leadingNow() {
		if time.Now().After(deadline) {
			t.Fatal("a Wait caller did not go back to the futex after Release")
		}
		time.Sleep(time.Millisecond)
	}
	w2, err := OpenWriter(path, Options{Size: MinSize})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	w2.Append(1, []byte("futex"))
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Attached again, then closed under a waiter.
	w2.SetLocal(l)
	go func() { done <- r.Wait(context.Background(), r.Head()) }()
	time.Sleep(20 * time.Millisecond)
	r.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close = %v, want ErrClosed", err)
	}
}
