//go:build linux

package shmring

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzRing builds a small valid ring with a few wrapped records and returns
// its bytes.
func fuzzRing(t testing.TB) []byte {
	dir, err := os.MkdirTemp("", "shmring-fuzz")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ring")
	w, err := OpenWriter(path, Options{Size: MinSize, Records: 64})
	if err != nil {
		t.Fatal(err)
	}
	for seq := uint64(FirstSeq); seq < 300; seq++ {
		w.Add(int64(seq), payloadFor(seq, sizeFor(seq, 900)))
		if seq%7 == 0 {
			w.Publish()
		}
	}
	w.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// FuzzOpen opens arbitrary file contents as a ring, reads everything a
// reader can see, then recovers it as a writer and appends. Nothing may
// panic, hang or fault; a writer's recovered ring must read back cleanly.
//
// The first input byte picks the mode: 0 takes the rest as the whole file;
// otherwise the rest is a list of patches (u32 offset, u8 length, bytes)
// applied to a valid ring, which reaches past the header checks.
func FuzzOpen(f *testing.F) {
	base := fuzzRing(f)
	f.Add([]byte{0})
	f.Add(append([]byte{0}, base[:headerSize]...))
	f.Add([]byte{1})
	f.Add([]byte{1, offHeadSeq, 0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{1, offTailPos, 0, 0, 0, 4, 1, 2, 3, 4})
	f.Add([]byte{1, 0, 0x20, 0, 0, 16, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		var file []byte
		if in[0] == 0 {
			file = in[1:]
		} else {
			file = append([]byte(nil), base...)
			for p := in[1:]; len(p) >= 5; {
				off := int(binary.LittleEndian.Uint32(p)) % len(file)
				n := min(int(p[4]), len(p)-5)
				copy(file[off:], p[5:5+n])
				p = p[5+n:]
			}
		}
		path := filepath.Join(t.TempDir(), "ring")
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		if r, err := OpenReader(path); err == nil {
			c := r.Cursor(0)
			for range 2 * r.descCount {
				if _, _, err := c.Next(); errors.Is(err, ErrNoRecord) {
					break
				}
			}
			r.Stats()
			r.Close()
		}
		w, err := OpenWriter(path, Options{})
		if err != nil {
			return
		}
		defer w.Close()
		before := w.Stats().Head
		for i := range 50 {
			if _, err := w.Add(int64(i), make([]byte, i*7)); err != nil {
				t.Fatal(err)
			}
		}
		w.Publish()
		r, err := OpenReader(path)
		if err != nil {
			t.Fatalf("writer recovered a ring a reader cannot open: %v", err)
		}
		defer r.Close()
		c := r.Cursor(before)
		for i := range 50 {
			rec, lost, err := c.Next()
			if err != nil || lost != 0 || len(rec.Payload) != i*7 {
				t.Fatalf("record %d after recovery: len %d lost %d err %v", i, len(rec.Payload), lost, err)
			}
		}
	})
}
