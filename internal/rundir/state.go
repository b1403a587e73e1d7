package rundir

import (
	"os"
	"path/filepath"
	"strings"
)

// StateDir returns the directory of a ring kept on a disk (collectord's
// storage = "persistent"): the first directory of $STATE_DIRECTORY when
// systemd set it (StateDirectory=); otherwise /var/lib/collectord as root
// and, for any other user, $XDG_STATE_HOME/collectord, or
// ~/.local/state/collectord without XDG_STATE_HOME.
func StateDir() string {
	if d := firstDir(os.Getenv("STATE_DIRECTORY")); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/lib/collectord"
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "collectord")
	}
	if home, err := os.UserHomeDir(); err == nil && filepath.IsAbs(home) {
		return filepath.Join(home, ".local", "state", "collectord")
	}
	return filepath.Join(Dir(), "state")
}

// PersistentRing returns the default path of a ring kept on a disk.
func PersistentRing() string { return filepath.Join(StateDir(), "ring") }

// VolatileRing returns the default path of a ring kept in memory: "ring"
// in the first directory of $RUNTIME_DIRECTORY when systemd set it
// (RuntimeDirectory=), otherwise Ring().
func VolatileRing() string {
	if d := firstDir(os.Getenv("RUNTIME_DIRECTORY")); d != "" {
		return filepath.Join(d, "ring")
	}
	return Ring()
}

// firstDir returns the first absolute directory of a colon-separated list,
// or "".
func firstDir(list string) string {
	d, _, _ := strings.Cut(list, ":")
	if !filepath.IsAbs(d) {
		return ""
	}
	return filepath.Clean(d)
}
