package record

import "testing"

func TestParsePriority(t *testing.T) {
	for in, want := range map[string]uint8{"13": 13, "err": 8 + 3, "local0.warning": 16<<3 | 4, "auth.crit": 4<<3 | 2,
		"warn": 8 + 4, "7": 7, "KERN.EMERG": 0, "local7.debug": 191, "daemon.panic": 3 << 3, "user.error": 8 + 3} {
		got, err := ParsePriority(in, 1)
		if err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"192", "-1", "bogus", "nosuch.err", "user.loud", ""} {
		if _, err := ParsePriority(in, 1); err == nil {
			t.Errorf("ParsePriority(%q) accepted", in)
		}
	}
}

func TestPriorityNames(t *testing.T) {
	for i := range uint8(24) {
		if got, err := ParsePriority(FacilityName(i)+".info", 1); err != nil || got != i<<3|6 {
			t.Errorf("facility %d: name %q parses back as %d, %v", i, FacilityName(i), got, err)
		}
	}
	for i := range uint8(8) {
		if got, err := ParseSeverity(SeverityName(i)); err != nil || got != i {
			t.Errorf("severity %d: name %q parses back as %d, %v", i, SeverityName(i), got, err)
		}
	}
	if got := FacilityName(24); got != "24" {
		t.Errorf("FacilityName(24) = %q", got)
	}
	if got := SeverityName(8); got != "8" {
		t.Errorf("SeverityName(8) = %q", got)
	}
}
