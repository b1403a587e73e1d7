package bytesize

import (
	"fmt"
	"strconv"
	"strings"
)

// Size is a byte count written as a number with an optional binary unit:
// 65536, 64KiB, 64MiB, 1GiB (K, M, G and KB, MB, GB mean the same).
type Size uint64

// Parse parses a Size.
func Parse(s string) (Size, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRightFunc(t, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(t[len(num):]))
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number with an optional unit (B, KiB, MiB, GiB, TiB)", s)
	}
	var shift uint
	switch unit {
	case "", "b":
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	case "t", "tb", "tib":
		shift = 40
	default:
		return 0, fmt.Errorf("size %q: unknown unit %q (B, KiB, MiB, GiB, TiB)", s, unit)
	}
	if n > (1<<63)>>shift {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	return Size(n << shift), nil
}

// String renders s the way sizes are configured: in the largest binary
// unit that divides it exactly ("64MiB", "1000B"). Parse reads it back.
func (s Size) String() string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	n, i := uint64(s), 0
	for n >= 1024 && n%1024 == 0 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return strconv.FormatUint(n, 10) + units[i]
}

// Set implements flag.Value.
func (s *Size) Set(v string) error {
	n, err := Parse(v)
	if err == nil {
		*s = n
	}
	return err
}

// UnmarshalTOML accepts "64MiB" strings and plain byte counts in a TOML
// file (github.com/BurntSushi/toml's Unmarshaler).
func (s *Size) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		return s.Set(v)
	case int64:
		if v < 0 {
			return fmt.Errorf("size %d: must not be negative", v)
		}
		*s = Size(v)
		return nil
	}
	return fmt.Errorf("size %v: want a string such as \"64MiB\" or a byte count", v)
}
