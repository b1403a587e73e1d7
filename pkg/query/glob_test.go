package query

import (
	"path"
	"strings"
	"testing"
)

func TestUnitPattern(t *testing.T) {
	for in, want := range map[string]string{
		"demo": "demo.service", "demo.service": "demo.service", "demo.socket": "demo.socket",
		"demo*": "demo*", "getty@tty1": "getty@tty1.service", "foo.bar": "foo.bar.service", "[ab]c": "[ab]c",
	} {
		if got, err := unitPattern(in); got != want || err != nil {
			t.Errorf("unitPattern(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		p, name string
		want    bool
	}{
		{"demo*", "demo.service", true},
		{"demo*", "ademo.service", false},
		{"*.service", "a.service", true},
		{"*.service", "a.socket", false},
		{"d?mo.service", "demo.service", true},
		{"[a-c]*", "cron.service", true},
		{"[!a-c]*", "cron.service", false},
		{"[]]x", "]x", true},
		{`demo\*`, "demo*", true},
		{`demo\*`, "demo.service", false},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
	} {
		if got := globMatch(tc.p, []byte(tc.name)); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.p, tc.name, got, tc.want)
		}
	}
}

// FuzzGlobMatch: a pattern from a client never panics the server, and
// where Go's path.Match understands it the same way (no '/'; no class
// negation, written '!' by fnmatch and journalctl but '^' by path.Match),
// both agree on ASCII (path.Match counts runes, globMatch bytes, as
// fnmatch in the C locale; unit names are ASCII).
func FuzzGlobMatch(f *testing.F) {
	f.Add("demo*", "demo.service")
	f.Add("[a-c]?x*", "bqxyz")
	f.Add(`\[x]`, "[x]")
	f.Fuzz(func(t *testing.T, p, name string) {
		if checkGlob(p) != nil {
			return
		}
		got := globMatch(p, []byte(name))
		if !isASCII(p+name) || strings.ContainsAny(p+name, "/^") || strings.Contains(p, "[]") || strings.Contains(p, "[!") {
			return
		}
		if want, err := path.Match(p, name); err == nil && got != want {
			t.Fatalf("globMatch(%q, %q) = %v, path.Match says %v", p, name, got, want)
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
