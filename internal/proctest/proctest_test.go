package proctest

import (
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	Main(m, map[string]func([]string) error{
		// report prints what the child was given.
		"report": func(args []string) error {
			_, selected := os.LookupEnv(childEnv)
			return json.NewEncoder(os.Stdout).Encode(childReport{Args: args, PID: os.Getpid(), Selected: selected, GORACE: os.Getenv("GORACE")})
		},
		"fail": func([]string) error { return errors.New("as asked") },
	})
}

type childReport struct {
	Args     []string
	PID      int
	Selected bool // the variable naming the child was still set
	GORACE   string
}

func TestChildCommand(t *testing.T) {
	args := []string{"one", "--", "-test.run=x", ""}
	out, err := ChildCommand(t.Context(), "report", args...).Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var got childReport
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	if !slices.Equal(got.Args, args) {
		t.Errorf("child got arguments %q, want %q", got.Args, args)
	}
	if got.PID == os.Getpid() {
		t.Error("child ran in the test's own process")
	}
	if got.Selected {
		t.Error("the child's environment still names it: its own children would run as it")
	}
	if Race && !strings.Contains(got.GORACE, "atexit_sleep_ms=0") {
		t.Errorf("child's GORACE = %q: a race-built child would sleep a second at exit", got.GORACE)
	}

	for name, want := range map[string]struct {
		code   int
		stderr string
	}{
		"fail":    {1, "child fail: as asked\n"},
		"unknown": {2, "proctest: the test binary has no child \"unknown\"\n"},
	} {
		cmd := ChildCommand(t.Context(), name)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != want.code || stderr.String() != want.stderr {
			t.Errorf("child %s: %v, stderr %q; want exit %d, stderr %q", name, err, stderr.String(), want.code, want.stderr)
		}
	}
}

// TestBinaryRaceMatchesTestBinary: the binaries are race-built exactly
// when this test binary is, and built once.
func TestBinaryRaceMatchesTestBinary(t *testing.T) {
	bin := Logctl(t)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	race := false
	for _, s := range info.Settings {
		if s.Key == "-race" {
			race = s.Value == "true"
		}
	}
	if race != Race {
		t.Errorf("%s built with -race=%v; the test binary has -race=%v", bin, race, Race)
	}
	t.Logf("%s: -race=%v", bin, race)
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if again := Logctl(t); again != bin {
		t.Errorf("second Logctl = %s, want %s", again, bin)
	} else if st2, err := os.Stat(again); err != nil || !st2.ModTime().Equal(st.ModTime()) {
		t.Errorf("logctl was built again (%v)", err)
	}
}

// needToolChild makes TestNeedToolMissing, run again by the test itself,
// ask NeedTool for logger.
const needToolChild = "PROCTEST_NEED_TOOL"

// TestNeedToolMissing: without logger on PATH, NeedTool skips the test,
// except under CI=true, where it fails it naming the Debian package.
func TestNeedToolMissing(t *testing.T) {
	if os.Getenv(needToolChild) != "" {
		NeedTool(t, "logger")
		t.Fatal("NeedTool returned")
	}
	for _, ci := range []string{"", "1", "true"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestNeedToolMissing$", "-test.v")
		cmd.Env = append(os.Environ(), needToolChild+"=1", "PATH="+t.TempDir(), "CI="+ci)
		out, err := cmd.CombinedOutput()
		want, wantErr := "--- SKIP: TestNeedToolMissing", false
		if ci == "true" {
			want, wantErr = "--- FAIL: TestNeedToolMissing", true
		}
		if !strings.Contains(string(out), want) || !strings.Contains(string(out), "Debian package bsdutils") || (err != nil) != wantErr {
			t.Errorf("CI=%q: %v\n%s\nwant %q naming bsdutils", ci, err, out, want)
		}
	}
}

func TestNeedToolFound(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/python3"
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if got := NeedTool(t, "python3"); got != path {
		t.Errorf("NeedTool(python3) = %q, want %q", got, path)
	}
}

// TestCIInstallsEveryTool: .ci/run installs every program NeedTool may
// ask for, from the package NeedTool names; under CI=true a missing one
// fails its test.
func TestCIInstallsEveryTool(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	for name, pkg := range debianPackages() {
		line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+` + regexp.QuoteMeta(pkg) + `\s`)
		if !line.Match(b) {
			t.Errorf(".ci/run does not list %s from the Debian package %s", name, pkg)
		}
	}
}

func TestOutputWaitFor(t *testing.T) {
	var o Output
	go func() {
		for i := range 5 {
			fmt.Fprintf(&o, "line %d\n", i)
		}
	}()
	text := o.WaitFor(t, "five lines", func(s string) bool { return strings.Count(s, "\n") == 5 })
	if !strings.HasPrefix(text, "line 0\n") || !strings.HasSuffix(text, "line 4\n") {
		t.Errorf("WaitFor returned %q", text)
	}
}
