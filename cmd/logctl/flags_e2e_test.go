package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
)

// TestTailFollowBundled: `logctl tail -fn 5` prints the latest five, then
// follows, as with coreutils tail and journalctl.
func TestTailFollowBundled(t *testing.T) {
	dir := openDir(t)
	d := startDaemon(t, dir, proctest.DaemonOptions{})
	defer d.Stop(t)
	for i := 1; i <= 8; i++ {
		d.Send(t, fmt.Sprintf("old %d", i))
	}
	f := startFollower(t, "tail", "-fn", "5", "-o", "cat", "--addr", d.QueryAddr)
	for i := 4; i <= 8; i++ {
		if got, want := f.next(t, e2eTimeout), fmt.Sprintf("old %d", i); got != want {
			t.Fatalf("backlog: got %q, want %q", got, want)
		}
	}
	d.Send(t, "new")
	if got := f.next(t, e2eTimeout); got != "new" {
		t.Fatalf("followed: got %q, want \"new\"", got)
	}
	f.stop(t)
}

// TestTailGNUFlags: flags after --flag=value, bundles, flags in any order,
// -n all, -r, -o cat and json-pretty, and the single-dash spellings of
// earlier versions, all give the records they should.
func TestTailGNUFlags(t *testing.T) {
	dir := openDir(t)
	d := startDaemon(t, dir, proctest.DaemonOptions{})
	defer d.Stop(t)
	d.Send(t, "a", "b", "c", "d")
	lines := func(args ...string) []string {
		t.Helper()
		r := logctl(t, args...)
		if r.code != 0 {
			t.Fatalf("logctl %q: exit %d: %s", args, r.code, r.stderr)
		}
		return strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"tail", "--lines=2", "--output=cat", "--addr=" + d.QueryAddr}, []string{"c", "d"}},
		{[]string{"tail", "-n2", "-ocat", "--addr", d.QueryAddr}, []string{"c", "d"}},
		{[]string{"tail", "-rn", "3", "-o", "cat", "--addr", d.QueryAddr}, []string{"d", "c", "b"}},
		{[]string{"tail", "--reverse", "-n", "all", "-o", "cat", "--addr", d.QueryAddr}, []string{"d", "c", "b", "a"}},
		{[]string{"tail", "-n", "all", "-o", "raw", "--ring", d.Ring}, []string{"a", "b", "c", "d"}},
		{[]string{"tail", "-r", "--ring", d.Ring, "-n", "2", "-o", "cat"}, []string{"d", "c"}},
		// Go flag package spellings, as scripts for earlier versions wrote them.
		{[]string{"tail", "-addr", d.QueryAddr, "-n", "1", "-o", "cat"}, []string{"d"}},
		{[]string{"tail", "-ring=" + d.Ring, "-n", "1", "-o", "cat"}, []string{"d"}},
	} {
		if got := lines(tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("logctl %q: %q, want %q", tc.args, got, tc.want)
		}
	}

	// json-pretty: one object per record, indented, the same fields as json.
	compact := lines("tail", "-n", "2", "-o", "json", "--addr", d.QueryAddr)
	r := logctl(t, "tail", "-n", "2", "-o", "json-pretty", "--addr", d.QueryAddr)
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for i := 0; dec.More(); i++ {
		var got, want map[string]any
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("json-pretty: %v in %q", err, r.stdout)
		}
		if err := json.Unmarshal([]byte(compact[i]), &want); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("json-pretty record %d: %v, want %v", i, got, want)
		}
	}
	if !strings.Contains(r.stdout, "{\n\t\"") || strings.Count(r.stdout, "\n") < 8 {
		t.Errorf("json-pretty is not indented:\n%s", r.stdout)
	}

	if r := logctl(t, "tail", "-f", "-r", "--addr", d.QueryAddr); r.code != 2 || !strings.Contains(r.stderr, "--reverse and --follow") {
		t.Errorf("tail -f -r: exit %d, stderr %q; want a usage error", r.code, r.stderr)
	}
}

// TestHelp: --help prints one line per flag, its short and long names
// together, and no single-dash long names.
func TestHelp(t *testing.T) {
	for _, cmd := range []string{"tail", "send", "stats", "completion"} {
		r := logctl(t, cmd, "--help")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: logctl "+cmd) {
			t.Fatalf("logctl %s --help: exit %d, stdout %q, stderr %q", cmd, r.code, r.stdout, r.stderr)
		}
		for _, l := range strings.Split(r.stdout, "\n") {
			f := strings.Fields(l)
			if len(f) > 0 && strings.HasPrefix(f[0], "-") && !strings.HasPrefix(f[0], "--") && len(strings.TrimSuffix(f[0], ",")) > 2 {
				t.Errorf("logctl %s --help: single-dash long flag in %q", cmd, l)
			}
		}
	}
	r := logctl(t, "tail", "-h")
	for _, want := range []string{"  -n, --lines N ", "  -f, --follow ", "  -r, --reverse ", "  -o, --output FORMAT ", "      --addr unix:PATH "} {
		if strings.Count(r.stdout, want) != 1 {
			t.Errorf("tail -h: want one line with %q:\n%s", want, r.stdout)
		}
	}
	if strings.Count(r.stdout, "--follow") != 2 { // its line, and -r's "not with --follow"
		t.Errorf("tail -h mentions --follow %d times:\n%s", strings.Count(r.stdout, "--follow"), r.stdout)
	}
}

// TestFollowInterruptedWithOutputBlocked: `logctl tail -f` whose output
// nobody reads (a pager stopped, a pipe full) ends within a few seconds of
// SIGINT with status 130, as a shell reports an interrupted command,
// instead of waiting forever in its write.
func TestFollowInterruptedWithOutputBlocked(t *testing.T) {
	dir := openDir(t)
	d := startDaemon(t, dir, proctest.DaemonOptions{})
	defer d.Stop(t)
	// About 300 KiB of output: more than a pipe holds.
	msgs := make([]string, 3000)
	for i := range msgs {
		msgs[i] = fmt.Sprintf("record %d %s", i, strings.Repeat("x", 80))
	}
	d.Send(t, msgs...)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(proctest.Logctl(t), "tail", "-f", "-n", "all", "--addr", d.QueryAddr)
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// Blocked once the pipe is full: its write sleeps in pipe_write.
	for deadline := time.Now().Add(e2eTimeout); !pipeWriterAsleep(cmd.Process.Pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("logctl never blocked writing to the pipe within %v", e2eTimeout)
		}
	}
	start := time.Now()
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Fatalf("logctl -f after SIGINT: %v, want exit status 130", err)
		}
		t.Logf("exited %v after SIGINT", time.Since(start))
	case <-time.After(e2eTimeout):
		cmd.Process.Kill()
		t.Fatalf("logctl -f blocked on its output did not exit within %v of SIGINT", e2eTimeout)
	}
}

// pipeWriterAsleep reports whether any thread of process pid sleeps in
// the kernel's pipe write.
func pipeWriterAsleep(pid int) bool {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	for _, task := range tasks {
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", pid, task.Name()))
		if strings.Contains(string(wchan), "pipe_write") {
			return true
		}
	}
	return false
}
