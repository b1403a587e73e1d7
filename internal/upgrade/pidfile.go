package upgrade

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// WritePIDFile writes pid, in decimal followed by a newline, to path,
// atomically: it writes a temporary file in the same directory, syncs it,
// makes it mode 0644 and renames it over path. A reader (systemd's
// PIDFile=, kill $(cat ...)) sees the old content or the new, never an
// empty or partial file. After an upgrade the new process writes its own
// pid once Running succeeded. On error path is unchanged and no temporary
// file is left behind.
func WritePIDFile(path string, pid int) error {
	if pid <= 0 {
		return fmt.Errorf("write pid file %s: invalid pid %d", path, pid)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	tmp := f.Name()
	err = writeSynced(f, strconv.Itoa(pid)+"\n")
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write pid file %s: %w", path, err)
	}
	return nil
}

// writeSynced writes s to f, makes it world-readable, syncs and closes it.
func writeSynced(f *os.File, s string) error {
	_, err := f.WriteString(s)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
