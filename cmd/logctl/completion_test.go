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

// completionScript writes `logctl completion shell`, from bin, to path
// and returns path.
func completionScript(t *testing.T, bin, shell, path string) string {
	t.Helper()
	out, err := exec.Command(bin, "completion", shell).Output()
	if err != nil {
		t.Fatalf("logctl completion %s: %v", shell, err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestCompletionBash loads `logctl completion bash` into a real bash, as a
// user would with source <(logctl completion bash), checks it with bash
// -n, and calls the completion function with COMP_WORDS as bash would.
func TestCompletionBash(t *testing.T) {
	bin := proctest.Logctl(t)
	script := completionScript(t, bin, "bash", filepath.Join(t.TempDir(), "logctl.bash"))
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

// TestCompletionFish loads `logctl completion fish` into a real fish and
// asks fish what it completes (complete -C), as at a prompt.
func TestCompletionFish(t *testing.T) {
	fish := proctest.NeedTool(t, "fish")
	script := completionScript(t, proctest.Logctl(t), "fish", filepath.Join(t.TempDir(), "logctl.fish"))
	if out, err := exec.Command(fish, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("fish -n: %v: %s", err, out)
	}
	complete := func(line string) []string {
		t.Helper()
		cmd := exec.Command(fish, "--no-config", "-c", `source $argv[1]; or exit 1; complete -C $argv[2]`, script, line)
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("completing %q: %v: %s", line, err, out)
		}
		var got []string
		for l := range strings.Lines(string(out)) {
			got = append(got, strings.SplitN(strings.TrimSuffix(l, "\n"), "\t", 2)[0]) // candidate, then its description
		}
		return got
	}
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"logctl ", []string{"completion", "send", "stats", "tail"}},
		{"logctl ta", []string{"tail"}},
		{"logctl tail --fo", []string{"--follow"}},
		{"logctl tail -o ", slices.Sorted(slices.Values(outputNames))},
		{"logctl tail -n 5 --output json", []string{"json", "json-pretty"}},
		{"logctl completion ", []string{"bash", "fish", "zsh"}},
	} {
		if got := complete(tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("completing %q: %q, want %q", tc.line, got, tc.want)
		}
	}
}

// TestCompletionZsh installs `logctl completion zsh` as _logctl in a
// directory of a real zsh's fpath, as packagers do, and checks that
// compinit registers it for logctl and that it offers the commands and
// tail's flags to zsh's completion functions (_describe and _arguments,
// replaced by ones that print what they are given: completing for real
// needs a terminal).
func TestCompletionZsh(t *testing.T) {
	zsh := proctest.NeedTool(t, "zsh")
	dir := t.TempDir()
	script := completionScript(t, proctest.Logctl(t), "zsh", filepath.Join(dir, "_logctl"))
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v: %s", err, out)
	}
	prog := `fpath=($1 $fpath); autoload -U compinit; compinit -u -D -d $2/zcompdump || exit 1
print -r -- "registered: $_comps[logctl]"
_describe() { print -rl -- ${(P)2} }
_arguments() { print -rl -- "$@" }
autoload -U _logctl
words=(logctl ''); CURRENT=2; _logctl
words=(logctl tail -); CURRENT=3; _logctl`
	cmd := exec.Command(zsh, "-f", "-c", prog, "zsh", dir, t.TempDir())
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("zsh: %v: %s", err, got)
	}
	for _, want := range []string{"registered: _logctl", "send:", "tail:", "stats:", "completion:",
		"(-f --follow)--follow[", "(-n --lines)-n+[", "(-r --reverse)--reverse[", "--ring=[", "(short short-iso json json-pretty cat)"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("zsh output lacks %q:\n%s", want, got)
		}
	}
}
