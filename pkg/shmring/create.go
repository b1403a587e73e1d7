//go:build linux

package shmring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lockHolder names the pid recorded by the current writer, if any.
func lockHolder(f *os.File) string {
	var b [4]byte
	if _, err := f.ReadAt(b[:], offWriter); err != nil {
		return ""
	}
	if pid := binary.LittleEndian.Uint32(b[:]); pid != 0 {
		return " (pid " + strconv.Itoa(int(pid)) + ")"
	}
	return ""
}

func readGeometry(f *os.File) (geometry, error) {
	st, err := f.Stat()
	if err != nil {
		return geometry{}, err
	}
	hdr := make([]byte, headerSize)
	if st.Size() >= headerSize {
		if _, err := f.ReadAt(hdr, 0); err != nil {
			return geometry{}, fmt.Errorf("read header: %w", err)
		}
	}
	return decodeGeometry(hdr, st.Size())
}

// openOrCreate opens path read-write, or creates a fully initialised ring
// there. Creation builds the file under a temporary name and links it into
// place, so no reader ever sees a half-initialised ring, and an existing
// file is never replaced.
func openOrCreate(path string, opts Options) (*os.File, bool, error) {
	for {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err == nil {
			return f, false, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("open ring %s: %w", path, err)
		}
		if err := create(path, opts); err != nil {
			if errors.Is(err, os.ErrExist) {
				continue // someone else created it meanwhile: open theirs
			}
			return nil, false, fmt.Errorf("create ring %s: %w", path, err)
		}
		f, err = os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return nil, false, fmt.Errorf("open ring %s: %w", path, err)
		}
		return f, true, nil
	}
}

func create(path string, opts Options) error {
	size := opts.Size
	if size == 0 {
		size = DefaultSize
	}
	g, err := newGeometry(size, opts.Records, time.Now().UnixNano())
	if err != nil {
		return err
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o640
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".new-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if opts.Group != 0 {
		if err := tmp.Chown(-1, opts.Group); err != nil {
			return fmt.Errorf("set group %d: %w", opts.Group, err)
		}
	}
	// After the chown, which may clear set-id bits.
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	// Reserve the space now, so a full tmpfs fails here and not as SIGBUS later.
	if err := unix.Fallocate(int(tmp.Fd()), 0, 0, g.fileSize()); err != nil {
		if !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("reserve %d bytes: %w", g.fileSize(), err)
		}
		if err := tmp.Truncate(g.fileSize()); err != nil {
			return err
		}
	}
	hdr := make([]byte, headerSize)
	g.encode(hdr)
	le := binary.LittleEndian
	le.PutUint64(hdr[offHeadSeq:], FirstSeq)
	le.PutUint64(hdr[offTailSeq:], FirstSeq)
	if _, err := tmp.WriteAt(hdr, 0); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	// link(2) fails with EEXIST rather than replacing a ring created meanwhile.
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	if opts.Durable {
		// The new name must survive a power cut too.
		return syncDir(filepath.Dir(path))
	}
	return nil
}

// syncDir makes the entries of directory dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// applyAccess gives an existing ring file the configured permission and
// group, where they differ.
func applyAccess(f *os.File, opts Options) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && opts.Group != 0 && int(sys.Gid) != opts.Group {
		if err := f.Chown(-1, opts.Group); err != nil {
			return fmt.Errorf("set group %d (now %d): %w", opts.Group, sys.Gid, err)
		}
	}
	if opts.Mode != 0 && st.Mode().Perm() != opts.Mode.Perm() {
		if err := f.Chmod(opts.Mode.Perm()); err != nil {
			return fmt.Errorf("set permission %#o (now %#o): %w", opts.Mode.Perm(), st.Mode().Perm(), err)
		}
	}
	return nil
}
