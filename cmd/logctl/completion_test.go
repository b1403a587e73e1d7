package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
)

// TestCompletionBash loads `logctl completion bash` into a real bash, as a
// user would with source <(logctl completion bash), checks it with bash
// -n, and calls the completion function with COMP_WORDS as bash would.
func TestCompletionBash(t *testing.T) {
	bin := proctest.Logctl(t)
	script := filepath.Join(t.TempDir(), "logctl.bash")
	out, err := exec.Command(bin, "completion", "bash").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("bash", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v: %s", err, out)
	}
	complete := func(words ...string) []string {
		t.Helper()
		// The last word is the one being completed.
		prog := `source <("$LOGCTL" completion bash) || exit 1
COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
_logctl logctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command("bash", append([]string{"-c", prog, "bash"}, words...)...)
		cmd.Env = append(os.Environ(), "LOGCTL="+bin)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("completing %q: %v: %s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  []string
	}{
		{[]string{"logctl", ""}, []string{"send", "tail", "stats", "completion"}},
		{[]string{"logctl", "ta"}, []string{"tail"}},
		{[]string{"logctl", "tail", "--fo"}, []string{"--follow"}},
		{[]string{"logctl", "tail", "--re"}, []string{"--reverse"}},
		{[]string{"logctl", "tail", "-o", ""}, outputNames},
		{[]string{"logctl", "tail", "-n", "5", "--output", "json"}, []string{"json", "json-pretty"}},
		{[]string{"logctl", "tail", "-p", "wa"}, []string{"warning"}},
		{[]string{"logctl", "stats", "--int"}, []string{"--interval"}},
		{[]string{"logctl", "send", "--so"}, []string{"--socket"}},
		{[]string{"logctl", "completion", ""}, []string{"bash", "zsh", "fish"}},
	} {
		if got := complete(tc.words...); !slices.Equal(got, tc.want) {
			t.Errorf("completing %q: %q, want %q", tc.words, got, tc.want)
		}
	}
	// A flag naming a file completes files.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ring-a"), nil, 0o644)
	got := complete("logctl", "tail", "--ring", filepath.Join(dir, "ri"))
	if !slices.Equal(got, []string{filepath.Join(dir, "ring-a")}) {
		t.Errorf("completing --ring: %q", got)
	}
	// Every flag of tail is offered.
	all := complete("logctl", "tail", "-")
	for _, want := range []string{"-n", "--lines", "-f", "--follow", "-r", "--reverse", "-o", "--output", "--addr", "--ring", "--token-file", "--help"} {
		if !slices.Contains(all, want) {
			t.Errorf("completing tail's flags: no %s in %q", want, all)
		}
	}
}

// TestCompletionScripts: every shell gets a script naming every command;
// an unknown shell is a usage error.
func TestCompletionScripts(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := logctl(t, "completion", sh)
		if r.code != 0 {
			t.Fatalf("completion %s: exit %d: %s", sh, r.code, r.stderr)
		}
		for _, want := range []string{"tail", "send", "stats", "completion", "--follow", "json-pretty"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("completion %s lacks %q", sh, want)
			}
		}
	}
	if r := logctl(t, "completion", "tcsh"); r.code != 2 || !strings.Contains(r.stderr, "bash, zsh, fish") {
		t.Errorf("completion tcsh: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestCommandNames checks that the name run matches a command by is the
// one its definition (help, man page, completions) gives it.
func TestCommandNames(t *testing.T) {
	for _, c := range commands() {
		if got := c.cli().Name; got != c.name {
			t.Errorf("command %q: its definition is named %q", c.name, got)
		}
	}
}
