package upgrade

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWritePIDFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "collectord.pid")
	check := func(want string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("pid file holds %q, want %q", got, want)
		}
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("pid file mode %v, want 0644", st.Mode().Perm())
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 {
			t.Errorf("directory holds %d entries, want only the pid file (temporary file left behind?)", len(ents))
		}
	}
	if err := WritePIDFile(path, 4242); err != nil {
		t.Fatalf("WritePIDFile: %v", err)
	}
	check("4242\n")

	// Replacing keeps the inode of readers that opened the old file intact
	// (rename), and the content is never partial.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := WritePIDFile(path, 77); err != nil {
		t.Fatalf("WritePIDFile over an existing file: %v", err)
	}
	check("77\n")
	buf := make([]byte, 16)
	n, _ := old.Read(buf)
	if string(buf[:n]) != "4242\n" {
		t.Errorf("a reader of the old file saw %q, want the complete old content", buf[:n])
	}
}

func TestWritePIDFileErrors(t *testing.T) {
	dir := t.TempDir()
	if err := WritePIDFile(filepath.Join(dir, "missing", "x.pid"), 1); err == nil {
		t.Error("WritePIDFile into a missing directory succeeded")
	}
	if err := WritePIDFile(filepath.Join(dir, "x.pid"), 0); err == nil {
		t.Error("WritePIDFile with pid 0 succeeded")
	}
	// A directory in the way: the rename fails and no temporary file stays.
	target := filepath.Join(dir, "busy")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WritePIDFile(target, 1); err == nil {
		t.Error("WritePIDFile over a non-empty directory succeeded")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want 1", len(ents))
	}
}
