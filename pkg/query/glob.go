package query

import (
	"errors"
	"strings"
)

// unitSuffixes are systemd's unit types: a -u name ending in none of them
// is taken as a service, as journalctl does ("nginx" means nginx.service).
var unitSuffixes = [...]string{".service", ".scope", ".slice", ".socket", ".mount", ".swap",
	".timer", ".path", ".target", ".device", ".automount"}

// unitPattern turns a -u argument into the glob pattern journalctl
// matches _SYSTEMD_UNIT with: a pattern with a wildcard (* ? [) as it
// is, a plain name with ".service" appended unless it names a unit type.
func unitPattern(s string) (string, error) {
	if s == "" {
		return "", errors.New("empty unit")
	}
	if err := checkGlob(s); err != nil {
		return "", err
	}
	if strings.ContainsAny(s, "*?[") {
		return s, nil
	}
	for _, suf := range unitSuffixes {
		if strings.HasSuffix(s, suf) {
			return s, nil
		}
	}
	return s + ".service", nil
}

// checkGlob reports a malformed pattern: an unclosed '[' or a trailing
// '\'.
func checkGlob(p string) error {
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i++; i == len(p) {
				return errors.New("trailing backslash in pattern")
			}
		case '[':
			end := classEnd(p, i+1)
			if end < 0 {
				return errors.New("unclosed [ in pattern")
			}
			i = end
		}
	}
	return nil
}

// classEnd returns the index of the ']' closing the class whose contents
// start at p[i], or -1. A ']' right after '[' or '[!' is a member.
func classEnd(p string, i int) int {
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		i++
	}
	if i < len(p) && p[i] == ']' {
		i++
	}
	for ; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case ']':
			return i
		}
	}
	return -1
}

// globMatch reports whether name matches the shell pattern p (checked by
// checkGlob): '*' any run of bytes, '?' one byte, [abc], [a-z], [!x] one
// byte of (not of) a class, '\' quoting the next byte. It works on bytes,
// as fnmatch(3) in the C locale does, and does not allocate.
func globMatch(p string, name []byte) bool {
	// Backtracking to the last '*' only: linear in practice, at most
	// len(p)*len(name) steps.
	px, nx := 0, 0
	starP, starN := -1, 0
	for px < len(p) || nx < len(name) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starP, starN = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					px++
					nx++
					continue
				}
			case '[':
				end := classEnd(p, px+1)
				if nx < len(name) && classMatch(p[px+1:end], name[nx]) {
					px = end + 1
					nx++
					continue
				}
			default:
				if c == '\\' {
					px++
					c = p[px]
				}
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if starP >= 0 && starN < len(name) {
			starN++
			px, nx = starP+1, starN
			continue
		}
		return false
	}
	return true
}

// classMatch reports whether b is in the class whose contents are c
// (between '[' and ']').
func classMatch(c string, b byte) bool {
	neg := false
	if len(c) > 0 && (c[0] == '!' || c[0] == '^') {
		neg, c = true, c[1:]
	}
	in := false
	for i := 0; i < len(c); i++ {
		lo := c[i]
		if lo == '\\' && i+1 < len(c) {
			i++
			lo = c[i]
		}
		hi := lo
		if i+2 < len(c) && c[i+1] == '-' {
			hi = c[i+2]
			if hi == '\\' && i+3 < len(c) {
				hi = c[i+3]
				i++
			}
			i += 2
		}
		if lo <= b && b <= hi {
			in = true
		}
	}
	return in != neg
}
