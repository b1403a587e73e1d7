package bytesize

import "testing"

func TestParse(t *testing.T) {
	for in, want := range map[string]Size{"65536": 65536, "64KiB": 64 << 10, "64MiB": 64 << 20, "1G": 1 << 30, "2 MB": 2 << 20} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "12XB", "99999999999TiB"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) accepted", in)
		}
	}
	if s := Size(64 << 20).String(); s != "64MiB" {
		t.Errorf("String = %s", s)
	}
}

func TestStringRoundTrip(t *testing.T) {
	for n, want := range map[Size]string{0: "0B", 1000: "1000B", 1024: "1KiB", 3 << 10: "3KiB", 1536: "1536B", 64 << 20: "64MiB", 1 << 40: "1TiB", 1 << 50: "1024TiB"} {
		if got := n.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", uint64(n), got, want)
		}
		if back, err := Parse(want); err != nil || back != n {
			t.Errorf("Parse(%q) = %d, %v; want %d", want, back, err, uint64(n))
		}
	}
}
