package record

import (
	"fmt"
	"strconv"
	"strings"
)

// facilityNames are the syslog facility names by number, as syslog(3)
// and util-linux logger spell them.
var facilityNames = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

// severityNames are the syslog severity names by number.
var severityNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// severityAliases are the other severity names syslog(3) and logger accept.
var severityAliases = map[string]uint8{"panic": 0, "error": 3, "warn": 4}

// FacilityName returns the name of facility f (0 "kern" .. 23 "local7"),
// or its number for one outside that range.
func FacilityName(f uint8) string {
	if int(f) < len(facilityNames) {
		return facilityNames[f]
	}
	return strconv.Itoa(int(f))
}

// SeverityName returns the name of severity s (0 "emerg" .. 7 "debug"),
// or its number for one outside that range.
func SeverityName(s uint8) string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return strconv.Itoa(int(s))
}

// ParseSeverity parses a severity name (emerg, alert, crit, err, warning,
// notice, info, debug, or the aliases panic, error, warn), in any case, or
// a digit 0..7.
func ParseSeverity(s string) (uint8, error) {
	s = strings.ToLower(s)
	if len(s) == 1 && s[0] >= '0' && s[0] <= '7' {
		return s[0] - '0', nil
	}
	for i, name := range severityNames {
		if name == s {
			return uint8(i), nil
		}
	}
	if n, ok := severityAliases[s]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("unknown level %q (emerg, alert, crit, err, warning, notice, info, debug or 0..7)", s)
}

// ParsePriority parses "facility.level", "level" (with facility
// defaultFacility) or a number 0..191 into a syslog PRI value
// (facility<<3 | severity), as logger -p does.
func ParsePriority(s string, defaultFacility uint8) (uint8, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 191 {
			return 0, fmt.Errorf("priority %d: must be between 0 and 191", n)
		}
		return uint8(n), nil
	}
	fac, lvl := defaultFacility, s
	if f, l, ok := strings.Cut(s, "."); ok {
		lvl = l
		found := false
		for i, name := range facilityNames {
			if name == strings.ToLower(f) {
				fac, found = uint8(i), true
			}
		}
		if !found {
			return 0, fmt.Errorf("priority %q: unknown facility %q (kern, user, daemon, local0..local7, ...)", s, f)
		}
	}
	sev, err := ParseSeverity(lvl)
	if err != nil {
		return 0, fmt.Errorf("priority %q: %w", s, err)
	}
	return fac<<3 | sev, nil
}
