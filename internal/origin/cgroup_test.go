package origin

import (
	"bytes"
	"testing"
)

func TestCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		name, file, want string
		ok               bool
	}{
		{"unified", "0::/system.slice/demo.service\n", "/system.slice/demo.service", true},
		{"hybrid, systemd in v1", "12:name=systemd:/system.slice/a.service\n1:cpu:/x\n0::/system.slice/a.service\n", "/system.slice/a.service", true},
		{"hybrid, v1 at the root", "9:name=systemd:/\n4:memory:/m\n0::/system.slice/demo.service\n", "/system.slice/demo.service", true},
		{"legacy only", "2:cpu,cpuacct:/c\n1:name=systemd:/user.slice/user-1000.slice/session-2.scope\n", "/user.slice/user-1000.slice/session-2.scope", true},
		{"v1 root only", "1:name=systemd:/\n", "/", true},
		{"controllers only", "4:memory:/m\n3:cpu:/c\n", "", false},
		{"colon in path", "0::/system.slice/a:b.service", "/system.slice/a:b.service", true},
		{"relative path ignored", "0::system.slice\n", "", false},
		{"empty", "", "", false},
	} {
		got, ok := CgroupPath([]byte(tc.file))
		if string(got) != tc.want || ok != tc.ok {
			t.Errorf("%s: CgroupPath = %q, %v; want %q, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestUnits(t *testing.T) {
	for _, tc := range []struct{ path, unit, userUnit, slice string }{
		{"/system.slice/demo.service", "demo.service", "", "system.slice"},
		{"/system.slice/demo.service/child", "demo.service", "", "system.slice"},
		{"/system.slice/system-getty.slice/getty@tty1.service", "getty@tty1.service", "", "system-getty.slice"},
		{"/user.slice/user-1000.slice/session-2.scope", "session-2.scope", "", "user-1000.slice"},
		{"/user.slice/user-1000.slice/user@1000.service/app.slice/app-foo.service", "user@1000.service", "app-foo.service", "user-1000.slice"},
		{"/user.slice/user-1000.slice/user@1000.service/init.scope", "user@1000.service", "init.scope", "user-1000.slice"},
		{"/user.slice/user-1000.slice/user@1000.service", "user@1000.service", "", "user-1000.slice"},
		{"/init.scope", "init.scope", "", "-.slice"},
		{"/system.slice/_cpu.service", "cpu.service", "", "system.slice"},
		{"/", "", "", ""},
		{"/system.slice", "", "", ""},
		{"/docker/0123abcd", "", "", ""},
		{"/system.slice/@.service", "", "", ""},
		{"/system.slice/a@.service", "", "", ""},
		{"/system.slice/noextension", "", "", ""},
		{"/system.slice/sp ace.service", "", "", ""},
	} {
		u, uu, s := Units([]byte(tc.path))
		if string(u) != tc.unit || string(uu) != tc.userUnit || string(s) != tc.slice {
			t.Errorf("Units(%q) = %q, %q, %q; want %q, %q, %q", tc.path, u, uu, s, tc.unit, tc.userUnit, tc.slice)
		}
	}
}

func TestStartTime(t *testing.T) {
	const rest = " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 19 20\n"
	for _, tc := range []struct {
		stat string
		want uint64
		ok   bool
	}{
		{"123 (bash)" + rest, 4242, true},
		{"123 (a) b) (c)" + rest, 4242, true},
		{"123 (x y)" + rest, 4242, true},
		{"123 (bash) S 1 2", 0, false},
		{"123 bash" + rest, 0, false},
		{"123 (b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -1 0", 0, false},
		{"", 0, false},
	} {
		got, ok := StartTime([]byte(tc.stat))
		if got != tc.want || ok != tc.ok {
			t.Errorf("StartTime(%q) = %d, %v; want %d, %v", tc.stat, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzCgroupUnits: whatever /proc/PID/cgroup holds, CgroupPath and Units
// do not panic, return subslices of their input (or "-.slice"), and a
// unit found is a valid unit name that is not a slice.
func FuzzCgroupUnits(f *testing.F) {
	f.Add([]byte("0::/system.slice/demo.service\n"))
	f.Add([]byte("9:name=systemd:/\n0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.service\n"))
	f.Fuzz(func(t *testing.T, file []byte) {
		p, ok := CgroupPath(file)
		if !ok {
			return
		}
		if !bytes.Contains(file, p) || len(p) == 0 || p[0] != '/' {
			t.Fatalf("CgroupPath(%q) = %q: not an absolute path from the input", file, p)
		}
		u, uu, s := Units(p)
		for _, x := range [][]byte{u, uu} {
			if x != nil && (!bytes.Contains(p, x) || !validUnitName(x) || bytes.HasSuffix(x, []byte(".slice"))) {
				t.Fatalf("Units(%q) gave unit %q", p, x)
			}
		}
		if u == nil && (uu != nil || s != nil) {
			t.Fatalf("Units(%q) = %q, %q, %q: a user unit or slice without a unit", p, u, uu, s)
		}
		if s != nil && !bytes.Equal(s, rootSlice) && !bytes.Contains(p, s) {
			t.Fatalf("Units(%q): slice %q not from the path", p, s)
		}
	})
}

// FuzzStartTime: StartTime never panics and finds a number only after
// the last ')'.
func FuzzStartTime(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 5 6 7 8 20 0 1 0 17 1000 20\n"))
	f.Fuzz(func(t *testing.T, stat []byte) {
		if _, ok := StartTime(stat); ok && bytes.LastIndexByte(stat, ')') < 0 {
			t.Fatalf("StartTime(%q) found a start time without a ')'", stat)
		}
	})
}
