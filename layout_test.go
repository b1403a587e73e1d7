package collectord

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/collectord/collectord"

// maxFileLines is the longest a non-test Go file may be.
const maxFileLines = 600

type listedPackage struct {
	ImportPath string
	Dir        string
	Name       string
	Doc        string
	GoFiles    []string
	Deps       []string
}

func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "-deps=false", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func TestPackagesHaveDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if p.Doc == "" {
			t.Errorf("%s: no package comment", p.ImportPath)
		}
		library := p.Name != "main" && (strings.HasPrefix(rel, "pkg/") || strings.HasPrefix(rel, "internal/"))
		if library {
			if _, err := os.Stat(filepath.Join(p.Dir, "doc.go")); err != nil {
				t.Errorf("%s: no doc.go", p.ImportPath)
			}
		}
	}
}

func TestPublicPackagesImportNoInternal(t *testing.T) {
	for _, p := range listPackages(t) {
		if !strings.HasPrefix(p.ImportPath, module+"/pkg/") {
			continue
		}
		for _, d := range p.Deps {
			if strings.HasPrefix(d, module+"/internal/") {
				t.Errorf("%s imports %s: a public package must be usable outside the module", p.ImportPath, d)
			}
		}
	}
}

func TestSourceFilesTellOneStory(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if !strings.HasPrefix(rel, "cmd/") && !strings.HasPrefix(rel, "pkg/") && !strings.HasPrefix(rel, "internal/") {
			continue
		}
		for _, name := range p.GoFiles {
			n := countLines(t, filepath.Join(p.Dir, name))
			if n > maxFileLines {
				t.Errorf("%s/%s: %d lines, more than %d", rel, name, n, maxFileLines)
			}
		}
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		n++
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestReadmeNamesEveryPackage(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if !strings.HasPrefix(rel, "cmd/") && !strings.HasPrefix(rel, "pkg/") && !strings.HasPrefix(rel, "internal/") {
			continue
		}
		if !bytes.Contains(readme, []byte("`"+rel+"`")) {
			t.Errorf("README.md's layout table does not name %s", rel)
		}
	}
}
