//go:build linux

package shmring

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func fileAccess(t *testing.T, path string) (os.FileMode, int) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm(), int(st.Sys().(*syscall.Stat_t).Gid)
}

func TestWriterSetsModeAndGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving a file to another group needs root")
	}
	const readers = 65534 // nogroup
	path := filepath.Join(t.TempDir(), "ring")
	w, err := OpenWriter(path, Options{Size: MinSize, Mode: 0o640, Group: readers})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if mode, gid := fileAccess(t, path); mode != 0o640 || gid != readers {
		t.Errorf("created ring: mode %#o group %d, want 0640 group %d", mode, gid, readers)
	}

	// A changed configuration applies to the existing ring.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, -1, 0); err != nil {
		t.Fatal(err)
	}
	w, err = OpenWriter(path, Options{Mode: 0o640, Group: readers})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if mode, gid := fileAccess(t, path); mode != 0o640 || gid != readers {
		t.Errorf("reopened ring: mode %#o group %d, want 0640 group %d", mode, gid, readers)
	}

	// Zero options leave an existing ring's access alone.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err = OpenWriter(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if mode, gid := fileAccess(t, path); mode != 0o600 || gid != readers {
		t.Errorf("reopened with zero options: mode %#o group %d, want 0600 group %d unchanged", mode, gid, readers)
	}
}

func TestWriterCreatesWithDefaultMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	w, err := OpenWriter(path, Options{Size: MinSize})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if mode, gid := fileAccess(t, path); mode != 0o640 || gid != os.Getegid() {
		t.Errorf("mode %#o group %d, want 0640 and our group %d", mode, gid, os.Getegid())
	}
}
