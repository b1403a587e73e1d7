package origin

import "bytes"

// CgroupPath returns the cgroup path that names a process's systemd unit,
// from the contents of /proc/PID/cgroup (lines "ID:CONTROLLERS:PATH").
// On a legacy or hybrid host systemd keeps its units in the v1 name=systemd
// hierarchy, on a unified one in the v2 hierarchy (ID 0, no controllers):
// the name=systemd path is used when it is below the root, else the v2
// path, else the name=systemd path ("/"). ok is false when the file names
// neither hierarchy. path aliases file.
func CgroupPath(file []byte) (path []byte, ok bool) {
	var v1, v2 []byte
	var haveV1, haveV2 bool
	for len(file) > 0 {
		line := file
		if i := bytes.IndexByte(file, '\n'); i >= 0 {
			line, file = file[:i], file[i+1:]
		} else {
			file = nil
		}
		id, rest, ok1 := bytes.Cut(line, []byte{':'})
		ctrls, p, ok2 := bytes.Cut(rest, []byte{':'})
		if !ok1 || !ok2 || len(p) == 0 || p[0] != '/' {
			continue
		}
		switch {
		case string(id) == "0" && len(ctrls) == 0:
			v2, haveV2 = p, true
		case hasController(ctrls, "name=systemd"):
			v1, haveV1 = p, true
		}
	}
	switch {
	case haveV1 && string(v1) != "/":
		return v1, true
	case haveV2:
		return v2, true
	}
	return v1, haveV1
}

func hasController(list []byte, name string) bool {
	for len(list) > 0 {
		var c []byte
		c, list, _ = bytes.Cut(list, []byte{','})
		if string(c) == name {
			return true
		}
	}
	return false
}

// rootSlice is the slice of a unit directly under the root cgroup.
var rootSlice = []byte("-.slice")

// Units returns the systemd units a cgroup path names, as journald's
// _SYSTEMD_UNIT, _SYSTEMD_USER_UNIT and _SYSTEMD_SLICE do:
//
//	/system.slice/nginx.service                 unit nginx.service, slice system.slice
//	/user.slice/user-1000.slice/session-2.scope unit session-2.scope, slice user-1000.slice
//	/user.slice/user-1000.slice/user@1000.service/app.slice/app.service
//	    unit user@1000.service, user unit app.service, slice user-1000.slice
//	/init.scope                                 unit init.scope, slice -.slice
//
// Leading slice components are skipped; the first component after them
// (with systemd's cgroup escape, a leading '_', removed) is the unit if it
// is a valid unit name, else there is none. Under a user manager
// (user@UID.service) the same rule, applied below it, gives the user unit.
// Deeper components (a service's own sub-cgroups) are ignored. The results
// alias path, except slice "-.slice", which is read-only.
func Units(path []byte) (unit, userUnit, slice []byte) {
	rest := path
	unit, slice, rest = firstUnit(rest)
	if unit == nil {
		return nil, nil, nil
	}
	if slice == nil {
		slice = rootSlice
	}
	if bytes.HasPrefix(unit, []byte("user@")) && bytes.HasSuffix(unit, []byte(".service")) {
		userUnit, _, _ = firstUnit(rest)
	}
	return unit, userUnit, slice
}

// firstUnit skips the slice components at the start of path and returns
// the unit component after them (unescaped), the last slice skipped, and
// what follows the unit.
func firstUnit(path []byte) (unit, slice, rest []byte) {
	for {
		for len(path) > 0 && path[0] == '/' {
			path = path[1:]
		}
		if len(path) == 0 {
			return nil, slice, nil
		}
		c := path
		if i := bytes.IndexByte(path, '/'); i >= 0 {
			c, path = path[:i], path[i:]
		} else {
			path = nil
		}
		if len(c) > 0 && c[0] == '_' {
			c = c[1:] // systemd's cg_escape
		}
		if !validUnitName(c) {
			return nil, slice, nil
		}
		if bytes.HasSuffix(c, []byte(".slice")) {
			slice = c
			continue
		}
		return c, slice, path
	}
}

// unitSuffixes are systemd's unit types.
var unitSuffixes = [...]string{".service", ".scope", ".slice", ".socket", ".mount", ".swap",
	".timer", ".path", ".target", ".device", ".automount"}

// validUnitName reports whether s is a valid name of a running unit:
// NAME.TYPE or NAME@INSTANCE.TYPE, NAME and INSTANCE not empty, of the
// characters systemd allows, at most 255 bytes.
func validUnitName(s []byte) bool {
	if len(s) == 0 || len(s) > 255 {
		return false
	}
	dot := bytes.LastIndexByte(s, '.')
	if dot <= 0 {
		return false
	}
	known := false
	for _, suf := range unitSuffixes {
		if string(s[dot:]) == suf {
			known = true
			break
		}
	}
	if !known {
		return false
	}
	name := s[:dot]
	if at := bytes.IndexByte(name, '@'); at >= 0 && (at == 0 || at == len(name)-1 || bytes.IndexByte(name[at+1:], '@') >= 0) {
		return false
	}
	for _, b := range name {
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9':
		case b == ':' || b == '-' || b == '_' || b == '.' || b == '\\' || b == '@':
		default:
			return false
		}
	}
	return true
}

// StartTime returns field 22 of the contents of /proc/PID/stat: when the
// process started, in clock ticks after boot. The second field (comm, in
// parentheses) may hold any byte, ')' and spaces included, so fields are
// counted from the last ')'. ok is false when the contents do not have
// that field as a decimal number.
func StartTime(stat []byte) (start uint64, ok bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	s := stat[i+1:]
	// Fields 3..21 come before the start time.
	for field := 3; field <= 22; field++ {
		for len(s) > 0 && s[0] == ' ' {
			s = s[1:]
		}
		end := 0
		for end < len(s) && s[end] != ' ' && s[end] != '\n' {
			end++
		}
		if end == 0 {
			return 0, false
		}
		if field == 22 {
			return parseUint(s[:end])
		}
		s = s[end:]
	}
	return 0, false
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	return v, true
}
