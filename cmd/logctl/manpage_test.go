package main

import (
	"bytes"
	"flag"
	"strings"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
)

var update = flag.Bool("update", false, "rewrite docs/man/logctl.1 (go generate)")

const manPath = "../../docs/man/logctl.1"

// TestManPage fails when docs/man/logctl.1 is not what the commands'
// definitions give; -update rewrites it.
func TestManPage(t *testing.T) {
	var b bytes.Buffer
	p := manPage()
	if err := p.WriteMan(&b); err != nil {
		t.Fatal(err)
	}
	proctest.Golden(t, manPath, b.Bytes(), *update, "run go generate ./cmd/logctl")
}

// TestManPageRenders runs man(1) on the committed page and finds every
// command and a flag of each.
func TestManPageRenders(t *testing.T) {
	text := proctest.RenderMan(t, manPath)
	for _, want := range []string{"LOGCTL(1)", "logctl tail", "-n, --lines N", "-r, --reverse", "logctl send", "-p, --priority PRIORITY", "logctl stats", "--interval DURATION", "logctl completion", "EXIT STATUS"} {
		if !strings.Contains(text, want) {
			t.Errorf("man logctl lacks %q:\n%s", want, text)
		}
	}
}
