package fdname

import "fmt"

// MaxLen is the longest name systemd accepts (FDNAME_MAX).
const MaxLen = 255

// Check returns an error when name breaks systemd's rule: 1 to MaxLen
// printable ASCII characters other than ':' (which separates names in
// LISTEN_FDNAMES). The error quotes the name.
func Check(name string) error {
	if name == "" || len(name) > MaxLen {
		return fmt.Errorf("fd name %q must be 1 to %d characters", name, MaxLen)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < ' ' || c > '~' || c == ':' {
			return fmt.Errorf("fd name %q: only printable ASCII other than ':' is allowed", name)
		}
	}
	return nil
}
