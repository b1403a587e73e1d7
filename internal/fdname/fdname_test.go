package fdname

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, name := range []string{"ingest", "query-local", "a", strings.Repeat("x", MaxLen), "with space", "~!@#"} {
		if err := Check(name); err != nil {
			t.Errorf("Check(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", strings.Repeat("x", MaxLen+1), "a:b", "tab\there", "nl\n", "é", "\x7f"} {
		if err := Check(name); err == nil {
			t.Errorf("Check(%q) accepted", name)
		}
	}
}
