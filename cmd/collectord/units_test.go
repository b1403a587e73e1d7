package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
)

// TestSystemdUnitsVerify runs systemd's own checker on the shipped units,
// with ExecStart pointing at the binary under test.
func TestSystemdUnitsVerify(t *testing.T) {
	verify := proctest.NeedTool(t, "systemd-analyze")
	daemonBin := proctest.Collectord(t)
	dir := t.TempDir()
	names := []string{"collectord.socket", "collectord-query-local.socket", "collectord-query.socket", "collectord-metrics.socket", "collectord.service"}
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		unit := strings.ReplaceAll(string(b), "/usr/local/bin/collectord", daemonBin)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(unit), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"verify"}
	for _, name := range names {
		args = append(args, filepath.Join(dir, name))
	}
	out, err := exec.Command(verify, args...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSysusersConfig runs systemd-sysusers on the shipped users file
// against an empty root: it must parse and create the daemon's user and
// the readers' group.
func TestSysusersConfig(t *testing.T) {
	sysusers := proctest.NeedTool(t, "systemd-sysusers")
	conf, err := filepath.Abs(filepath.Join("..", "..", "deploy", "sysusers.d", "collectord.conf"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sysusers, "--dry-run", "--root", t.TempDir(), conf).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	for _, want := range []string{"Creating group 'collectord-readers'", "Creating user 'collectord'"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("systemd-sysusers output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "ignoring") || strings.Contains(string(out), "not a valid") {
		t.Errorf("systemd-sysusers complained:\n%s", out)
	}
}
