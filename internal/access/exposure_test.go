package access

import (
	"errors"
	"testing"
)

func TestGuardCheck(t *testing.T) {
	for _, tt := range []struct {
		addr    string
		g       Guard
		exposed bool
	}{
		{"127.0.0.1:7514", Guard{}, false},
		{"127.0.0.2:7514", Guard{}, false},
		{"[::1]:7514", Guard{}, false},
		{"[::ffff:127.0.0.1]:7514", Guard{}, false},
		{"localhost:7514", Guard{}, false},
		{"0.0.0.0:7514", Guard{}, true},
		{":7514", Guard{}, true},
		{"[::]:7514", Guard{}, true},
		{"192.0.2.1:7514", Guard{}, true},
		{"logs.example:7514", Guard{}, true},
		{"not an address", Guard{}, true},
		{"0.0.0.0:7514", Guard{TLS: true}, false},
		{"0.0.0.0:7514", Guard{Token: true}, false},
		{"0.0.0.0:7514", Guard{Insecure: true}, false},
	} {
		err := tt.g.Check(tt.addr)
		if got := errors.Is(err, ErrExposed); got != tt.exposed || (err != nil) != tt.exposed {
			t.Errorf("%+v.Check(%q) = %v, want exposed %v", tt.g, tt.addr, err, tt.exposed)
		}
	}
}

func TestGuardCleartextToken(t *testing.T) {
	for _, tt := range []struct {
		addr string
		g    Guard
		want bool
	}{
		{"0.0.0.0:7514", Guard{Token: true}, true},
		{"0.0.0.0:7514", Guard{Token: true, TLS: true}, false},
		{"127.0.0.1:7514", Guard{Token: true}, false},
		{"0.0.0.0:7514", Guard{}, false},
	} {
		if got := tt.g.CleartextToken(tt.addr); got != tt.want {
			t.Errorf("%+v.CleartextToken(%q) = %v, want %v", tt.g, tt.addr, got, tt.want)
		}
	}
}
