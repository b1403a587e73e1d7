package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

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
