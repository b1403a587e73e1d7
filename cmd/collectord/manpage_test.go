package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/collectord/collectord/internal/proctest"
)

var update = flag.Bool("update", false, "rewrite docs/man/collectord.8 (go generate)")

const manPath = "../../docs/man/collectord.8"

// TestManPage fails when docs/man/collectord.8 is not what the flag
// definitions and the example configuration give; -update rewrites it.
func TestManPage(t *testing.T) {
	config, err := os.ReadFile("../../configs/collectord.toml")
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	p := manPage(string(config))
	if err := p.WriteMan(&b); err != nil {
		t.Fatal(err)
	}
	proctest.Golden(t, manPath, b.Bytes(), *update, "run go generate ./cmd/collectord")
}

// TestManPageRenders runs man(1) on the committed page: it lists every
// flag and the configuration file with its keys.
func TestManPageRenders(t *testing.T) {
	text := proctest.RenderMan(t, manPath)
	c := Defaults()
	var path string
	newFlagSet(&c, &path).VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(text, "--"+f.Name+" ") {
			t.Errorf("man collectord lacks --%s", f.Name)
		}
	})
	for _, want := range []string{"COLLECTORD(8)", "CONFIGURATION", "ring_size =", "query_token_file", "/etc/collectord/collectord.toml", "EXIT STATUS"} {
		if !strings.Contains(text, want) {
			t.Errorf("man collectord lacks %q", want)
		}
	}
}
