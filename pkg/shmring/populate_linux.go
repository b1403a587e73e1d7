package shmring

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"
)

// populateChunk is how much of the ring Populate maps per system call.
const populateChunk = 2 << 20

// madvPopulateRead and madvPopulateWrite are Linux 5.14's
// MADV_POPULATE_READ and MADV_POPULATE_WRITE.
const (
	madvPopulateRead  = 22
	madvPopulateWrite = 23
)

// Populate maps the whole ring into this process's page tables, so that
// Add never stops on a page fault: on a fresh ring the first lap would
// otherwise fault on every page, and after a restart or a takeover every
// page faults once more in the new process. It starts at the head and
// goes round once, a chunk at a time, and returns when done, or early
// with ctx's error. It changes no data and may run in its own goroutine
// while the writer adds and publishes; it must have returned before Close
// (or Release of a takeover, which unmaps nothing, but Close follows).
//
// On tmpfs the pages are mapped writable (MADV_POPULATE_WRITE). On a disk
// filesystem they are mapped for reading only: a writable mapping would
// mark every page dirty and make the next sync write the whole file. An
// older kernel without either advice makes Populate a no-op.
func (w *Writer) Populate(ctx context.Context) error {
	advice := madvPopulateRead
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(w.f.Fd()), &st); err == nil && st.Type == unix.TMPFS_MAGIC {
		advice = madvPopulateWrite
	}
	// The header and the descriptors first: every batch writes them.
	if err := madvise(w.mem[:w.dataOffset], advice); err != nil {
		return ignoreUnsupported(err)
	}
	start := (w.load(offHeadPos) & w.dataMask) &^ (populateChunk - 1) // the published head: the writer owns w.headPos
	for done := uint64(0); done < w.dataSize; done += populateChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		off := (start + done) & w.dataMask
		end := min(off+populateChunk, w.dataSize)
		if err := madvise(w.data[off:end], advice); err != nil {
			return ignoreUnsupported(err)
		}
	}
	return nil
}

func madvise(b []byte, advice int) error {
	for {
		err := unix.Madvise(b, advice)
		if err != unix.EINTR && err != unix.EAGAIN {
			return err
		}
	}
}

// ignoreUnsupported turns "this kernel has no such advice" into nil.
func ignoreUnsupported(err error) error {
	if errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}
