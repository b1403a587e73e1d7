//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/collectord/collectord/internal/rundir"
)

// prepareDirs creates the ring's and the sockets' directories if needed.
//
// The ring's directory is limited to the daemon's user and the readers'
// group when this daemon owns it, that is when it creates it now or when
// systemd made it for it (RuntimeDirectory=, or StateDirectory= for a
// ring on disk): mode 0750, or 0751 when the datagram socket or the local
// query socket lives there too, so that every user reaches the socket but
// only readers can list the directory. A per-user daemon without a
// readers' group keeps its directory private (0700). A directory the
// daemon does not own is left alone, with a warning if others may list it;
// the ring file's own permission protects the records either way.
func prepareDirs(cfg *Config, log *slog.Logger) error {
	ringDir, sockDir := filepath.Dir(cfg.Ring), filepath.Dir(cfg.Socket)
	queryDir := ""
	if cfg.QuerySocket != "" {
		queryDir = filepath.Dir(cfg.QuerySocket)
	}
	_, err := os.Lstat(ringDir)
	ours := errors.Is(err, os.ErrNotExist) || isSystemdDirectory(ringDir)
	mode := os.FileMode(0o750)
	if os.Geteuid() != 0 && cfg.RingGroup == 0 {
		mode = 0o700
	}
	if (ringDir == sockDir || ringDir == queryDir) && mode&0o070 != 0 {
		mode |= 0o001
	}
	if err := rundir.Ensure(ringDir, mode); err != nil {
		return err
	}
	if ours {
		if err := limitDir(ringDir, mode, cfg.RingGroup); err != nil {
			return err
		}
	} else if st, err := os.Stat(ringDir); err == nil && st.Mode().Perm()&0o004 != 0 {
		log.Warn("the ring's directory may be listed by anyone; the ring file itself is protected by ring_mode",
			"dir", ringDir, "mode", fmt.Sprintf("%#o", st.Mode().Perm()))
	}
	sockMode := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		sockMode = 0o755
	}
	for _, dir := range []string{sockDir, queryDir} {
		if dir != "" && dir != ringDir {
			if err := rundir.Ensure(dir, sockMode); err != nil {
				return err
			}
		}
	}
	if os.Geteuid() == 0 {
		warnUnreachable(log, "datagram socket", sockDir)
		warnUnreachable(log, "local query socket", queryDir)
	}
	return nil
}

// warnUnreachable warns when other users cannot reach the socket named
// what in dir (a directory collectord did not make, without search
// permission for others): a system daemon's sockets are for every user,
// who would otherwise see only "permission denied".
func warnUnreachable(log *slog.Logger, what, dir string) {
	if dir == "" {
		return
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o001 == 0 {
		log.Warn("other users cannot reach the "+what+": its directory is not searchable by them; chmod o+x it, or remove it and let collectord make it",
			"dir", dir, "mode", fmt.Sprintf("%#o", st.Mode().Perm()))
	}
}

// limitDir gives dir the mode and, if gid is not zero, the group.
func limitDir(dir string, mode os.FileMode, gid int) error {
	if gid != 0 {
		st, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Gid) != gid {
			if err := os.Chown(dir, -1, gid); err != nil {
				return fmt.Errorf("give the ring's directory to the readers' group %d: %w", gid, err)
			}
		}
	}
	if err := os.Chmod(dir, mode); err != nil {
		return fmt.Errorf("limit access to the ring's directory: %w", err)
	}
	return nil
}

// isSystemdDirectory reports whether systemd created dir for this service
// (RuntimeDirectory= or StateDirectory=, announced in $RUNTIME_DIRECTORY
// and $STATE_DIRECTORY).
func isSystemdDirectory(dir string) bool {
	for _, env := range []string{"RUNTIME_DIRECTORY", "STATE_DIRECTORY"} {
		for d := range strings.SplitSeq(os.Getenv(env), ":") {
			if d != "" && filepath.Clean(d) == filepath.Clean(dir) {
				return true
			}
		}
	}
	return false
}
