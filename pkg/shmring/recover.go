//go:build linux

package shmring

import "sync/atomic"

// recover establishes the live state from the mapped file.
//
// After a clean Release the header's counters are trusted once they agree
// with the records at both ends of the live range (endsAgree), and the
// records between are not re-read, so that a new writer takes over in
// microseconds whatever the ring's size; readers still validate every
// record they read. After
// anything else (the writer's process died, or the machine did, leaving on
// disk any mix of older and newer contents of the pages written since the
// last Sync) the live range is rebuilt from the records themselves: see
// scan.
func (w *Writer) recover() {
	w.head = w.load(offHeadSeq)
	w.headPos = w.load(offHeadPos)
	w.tail = w.load(offTailSeq)
	w.tailPos = w.load(offTailPos)
	if w.recovered.Clean && w.consistent() && w.endsAgree() {
		w.adopt()
	} else {
		w.recovered.Rebuilt = !w.consistent()
		w.scan()
	}
	w.storeTail()
	w.published = 0
	w.Publish()
}

// adopt takes in records committed (descriptor stored) after the last
// publish: after a clean Release there are none, unless the file was
// changed behind the writer's back.
func (w *Writer) adopt() {
	for {
		pos, size, ok := w.validAt(w.head)
		if !ok || !w.follows(pos) || pos+size-w.tailPos > w.dataSize || w.head-w.tail >= w.descCount {
			break
		}
		w.head++
		w.headPos = pos + size
		w.recovered.Unpublished++
	}
	w.recovered.Records = w.head - w.tail
}

// scan rebuilds the live range from the descriptors and records, trusting
// the header's counters only as bounds. It is what makes a ring crash
// consistent on a real disk, where a power cut may leave the header or a
// descriptor newer than the record it points at, or the reverse:
//
//   - The newest intact record (descriptor naming it, record's own
//     sequence number and CRC32C matching) becomes the last one: the
//     sequence continues right after it.
//   - Going back from it, every intact record is kept, down to the
//     header's tail (the writer stores it before overwriting anything), at
//     most one descriptor table back, and up to the first intact record
//     that is not placed before the next one kept or lies more than a lap
//     behind the head (the ring overwrote it since).
//   - Sequence numbers in that range whose record is torn or missing stay
//     in it as holes: their descriptors are rewritten to name them at the
//     position where the next kept record starts, so that readers report
//     them damaged (lost) and the writer's eviction walks past them.
//
// Records past the newest intact one are torn or missing: they are
// dropped, and their sequence numbers given again. None of them was
// synced: everything a completed Sync covered is intact, so the newest
// intact record is at least the newest synced one. After a process crash (SIGKILL) the page cache holds everything
// the writer wrote: every committed record is intact, and nothing is
// dropped.
func (w *Writer) scan() {
	hdrHead, hdrTail := w.head, w.tail
	// Which slots hold an intact record of the sequence number they name.
	valid := make([]uint64, (w.descCount+63)/64)
	isValid := func(s uint64) bool {
		i := s & w.descMask
		return valid[i/64]&(1<<(i%64)) != 0 && *w.descSeq(s) == s
	}
	var newest uint64
	for i := range w.descCount {
		s := *w.word64(w.descOffset + i*descSize)
		if s < FirstSeq || s >= 1<<62 || s&w.descMask != i {
			continue
		}
		if pos, _, ok := w.validAt(s); ok && pos < 1<<62 {
			valid[i/64] |= 1 << (i % 64)
			newest = max(newest, s)
		}
	}
	if newest == 0 {
		next := hdrHead
		if next < FirstSeq || next >= 1<<62 {
			next = FirstSeq
		}
		w.head, w.tail, w.headPos, w.tailPos = next, next, 0, 0
		return
	}
	pos, size, _ := w.validAt(newest)
	w.head, w.headPos = newest+1, pos+size
	w.tail, w.tailPos = newest, pos
	floor := uint64(FirstSeq)
	if w.head > w.descCount {
		floor = w.head - w.descCount
	}
	if hdrTail > floor && hdrTail <= newest {
		floor = hdrTail
	}
	kept := uint64(1)
	for s := newest - 1; s >= floor; s-- {
		if !isValid(s) {
			continue
		}
		p, sz, _ := w.validAt(s)
		if p+sz > w.tailPos || w.headPos-p > w.dataSize {
			break // overwritten since: the ring ends here
		}
		w.tail, w.tailPos = s, p
		kept++
	}
	// Holes: name each at the position of the next kept record.
	next := w.headPos
	for s := newest; s >= w.tail && s >= FirstSeq; s-- {
		if isValid(s) {
			next = *w.descPos(s)
			if s >= hdrHead && hdrHead >= FirstSeq {
				w.recovered.Unpublished++
			}
			continue
		}
		atomic.StoreUint64(w.descPos(s), next)
		atomic.StoreUint64(w.descSeq(s), s)
	}
	w.recovered.Records = kept
	w.recovered.Damaged = w.head - w.tail - kept
}

// endsAgree reports whether the header's counters name the records at the
// ends of the live range: the newest one intact and ending at headPos, the
// oldest one's descriptor naming tailPos (it may be a hole an earlier
// recovery left, which only readers skip). A clean Release leaves them so;
// a header changed since (a flipped bit, a stray write) fails here and is
// rebuilt by scan instead of trusted.
func (w *Writer) endsAgree() bool {
	if w.head == w.tail {
		return w.headPos == w.tailPos
	}
	pos, size, ok := w.validAt(w.head - 1)
	if !ok || pos+size != w.headPos {
		return false
	}
	return *w.descSeq(w.tail) == w.tail && *w.descPos(w.tail) == w.tailPos
}

// consistent reports whether the live counters satisfy the ring invariants.
func (w *Writer) consistent() bool {
	return w.head >= FirstSeq && w.tail >= FirstSeq && w.tail <= w.head &&
		w.head-w.tail <= w.descCount && w.tailPos <= w.headPos &&
		w.headPos-w.tailPos <= w.dataSize && w.headPos&(recAlign-1) == 0 &&
		w.head < 1<<62 && w.headPos < 1<<62
}

// follows reports whether a record at pos may directly follow headPos:
// either right there, or at the start of the next lap after padding.
func (w *Writer) follows(pos uint64) bool {
	if pos == w.headPos {
		return true
	}
	off := w.headPos & w.dataMask
	return off != 0 && pos == w.headPos+(w.dataSize-off)
}

// validAt checks the descriptor and record of seq, returning its position
// and size when both are intact.
func (w *Writer) validAt(seq uint64) (pos, size uint64, ok bool) {
	if *w.descSeq(seq) != seq {
		return 0, 0, false
	}
	pos = *w.descPos(seq)
	off := pos & w.dataMask
	if off&(recAlign-1) != 0 || off+recHeaderSize > w.dataSize {
		return 0, 0, false
	}
	n, ok := checkRecord(w.data[off:], seq)
	if !ok {
		return 0, 0, false
	}
	size = recordSize(n)
	if off+size > w.dataSize {
		return 0, 0, false
	}
	return pos, size, true
}
