package proctest

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of the external program name, found in PATH.
// When it is not installed the test is skipped, except in CI (the
// environment variable CI is "true"), where it fails, naming the Debian
// package that provides the program: CI installs them all (.ci/run), so a
// missing one there means a test that no longer runs.
//
// Only the programs debianPackages names may be asked for: a test
// needing a new one adds it there and to .ci/run.
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	pkg := debianPackages()[name]
	if pkg == "" {
		t.Fatalf("proctest.NeedTool: no Debian package known for %q: add it to debianPackages and to .ci/run", name)
	}
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not installed (Debian package %s), and CI=true: CI must install it (see .ci/run)", name, pkg)
	}
	t.Skipf("%s not installed (Debian package %s)", name, pkg)
	return ""
}

// debianPackages maps each program NeedTool knows to the Debian 12
// package that installs it.
func debianPackages() map[string]string {
	return map[string]string{
		"fish":                    "fish",     // completions, run by the shell they are for
		"kcat":                    "kcat",     // librdkafka's client, a Kafka consumer not ours
		"logger":                  "bsdutils", // util-linux's logger
		"man":                     "man-db",   // renders the man pages (with groff-base)
		"python3":                 "python3",
		"prometheus":              "prometheus",
		"promtool":                "prometheus",
		"strace":                  "strace", // the system calls a test observes
		"systemd-analyze":         "systemd",
		"systemd-notify":          "systemd",
		"systemd-socket-activate": "systemd",
		"systemd-sysusers":        "systemd",
		"zsh":                     "zsh",
	}
}
