package proctest

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RenderMan renders the man page file at path with man -l, as a user
// would read it (100 columns, no bold or underline), and fails the test if
// man fails or complains.
func RenderMan(t testing.TB, path string) string {
	t.Helper()
	man := NeedTool(t, "man")
	cmd := exec.Command(man, "-l", "-Tutf8", path)
	cmd.Env = append(os.Environ(), "MANWIDTH=100")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("man -l %s: %v: %s", path, err, stderr.String())
	}
	// Strip the backspace overstrikes of bold and underline.
	var b strings.Builder
	for i := 0; i < len(out); i++ {
		if i+1 < len(out) && out[i+1] == '\b' {
			i++
			continue
		}
		b.WriteByte(out[i])
	}
	return b.String()
}

// Golden compares got with the file at path; with update it first writes
// got there. stale says how to bring the file up to date.
func Golden(t testing.TB, path string, got []byte, update bool, stale string) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: %s", path, stale)
	}
}
