//go:build linux

package shmring

// recover establishes the live state from the mapped file.
func (w *Writer) recover() {
	w.head = w.load(offHeadSeq)
	w.headPos = w.load(offHeadPos)
	w.tail = w.load(offTailSeq)
	w.tailPos = w.load(offTailPos)
	if !w.consistent() {
		w.rebuild()
	}
	// Adopt records committed (descriptor stored) after the last publish.
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
	if !w.recovered.Clean || w.recovered.Rebuilt {
		// After a crash, verify every live record. After a clean Close
		// this is skipped, so that a new writer takes over in
		// microseconds whatever the ring's size; readers still validate
		// every record they read.
		for s := w.tail; s < w.head; s++ {
			if _, _, ok := w.validAt(s); !ok {
				w.recovered.Damaged++
			}
		}
		w.recovered.Records -= w.recovered.Damaged
	}
	w.storeTail()
	w.published = 0
	w.Publish()
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

// rebuild reconstructs the live counters from the descriptors when the
// header's are damaged: the newest intact record becomes the head, and the
// live range extends back over intact, consistently placed records. Records
// older than the first damaged one are dropped.
func (w *Writer) rebuild() {
	w.recovered.Rebuilt = true
	var newest uint64
	for i := uint64(0); i < w.descCount; i++ {
		s := *w.word64(w.descOffset + i*descSize)
		if s > newest && s < 1<<62 && s&w.descMask == i {
			if _, _, ok := w.validAt(s); ok {
				newest = s
			}
		}
	}
	if newest == 0 {
		next := max(w.head, FirstSeq)
		if next >= 1<<62 {
			next = FirstSeq
		}
		w.head, w.tail, w.headPos, w.tailPos = next, next, 0, 0
		return
	}
	pos, size, _ := w.validAt(newest)
	w.head, w.headPos = newest+1, pos+size
	w.tail, w.tailPos = newest, pos
	for s := newest - 1; s >= FirstSeq && w.head-s <= w.descCount; s-- {
		p, sz, ok := w.validAt(s)
		if !ok || p+sz > w.tailPos || w.headPos-p > w.dataSize {
			break
		}
		w.tail, w.tailPos = s, p
	}
}
