package rundir

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Default TCP addresses, loopback only.
const (
	QueryAddr   = "127.0.0.1:7514"
	MetricsAddr = "127.0.0.1:7515"
)

// Dir returns the runtime directory for the current user.
func Dir() string {
	if os.Geteuid() == 0 {
		return "/run/collectord"
	}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "collectord")
	}
	return filepath.Join(os.TempDir(), "collectord-"+strconv.Itoa(os.Geteuid()))
}

// Socket returns the default datagram socket path.
func Socket() string {
	if os.Geteuid() == 0 {
		return "/run/collector.sock"
	}
	return filepath.Join(Dir(), "collector.sock")
}

// Ring returns the default ring file path.
func Ring() string { return filepath.Join(Dir(), "ring") }

// QuerySocket returns the default path of the daemon's local query socket.
func QuerySocket() string { return filepath.Join(Dir(), "query.sock") }

// SystemQuerySocket is root's daemon's local query socket.
const SystemQuerySocket = "/run/collectord/query.sock"

// QuerySockets lists the local query sockets a client on this host may
// ask, the most specific first: as root, SystemQuerySocket; as any other
// user, the socket of a daemon of their own (QuerySocket), then the
// system's.
func QuerySockets() []string {
	if os.Geteuid() == 0 {
		return []string{SystemQuerySocket}
	}
	return []string{QuerySocket(), SystemQuerySocket}
}

// Ensure creates dir (and its parents) if needed. A directory that already
// exists must be owned by the current user unless we are root, so that a
// directory another user made in /tmp cannot capture our socket or ring.
// mode applies to a directory it creates.
func Ensure(dir string, mode os.FileMode) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create runtime directory %s: %w", dir, err)
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("create runtime directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("runtime directory %s is not a directory", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() != 0 && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("runtime directory %s is owned by uid %d, not by us (uid %d)", dir, sys.Uid, os.Geteuid())
	}
	return nil
}
