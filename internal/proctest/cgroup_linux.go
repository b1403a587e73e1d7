package proctest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// cgroupSeq numbers the cgroups NewCgroup makes in this test binary.
var cgroupSeq atomic.Int64

// Cgroup is a cgroup that NewCgroup created for a test.
type Cgroup struct {
	Dir  string // its directory in the cgroup filesystem
	Path string // its path as /proc/PID/cgroup shows it ("/collectord-test-….slice/system.slice/demo.service")
}

// NewCgroup creates the cgroup rel ("system.slice/demo.service") under a
// slice of the test's own, "collectord-test-PID-N.slice", so that tests
// running at once never share one, in the cgroup v2 hierarchy (v1 false)
// or in the v1 name=systemd hierarchy (v1 true). Processes moved in must
// have exited when the test ends: the cleanup removes the directories.
//
// It needs root and a writable hierarchy. Without them the test is
// skipped, except in CI (CI=true), where it fails: CI runs as root on a
// host with cgroup v2, so a skip there would hide a test that no longer
// runs. A host without the v1 name=systemd hierarchy (any pure cgroup v2
// host) skips a v1 test even in CI.
func NewCgroup(t testing.TB, rel string, v1 bool) *Cgroup {
	t.Helper()
	root, err := cgroupRoot(v1)
	if err == nil && os.Geteuid() != 0 {
		err = fmt.Errorf("not root (euid %d)", os.Geteuid())
	}
	if err != nil {
		if v1 && root == "" && err == errNoV1 {
			t.Skipf("cgroup: %v", err)
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("cgroup: %v, and CI=true: CI must run these tests as root with a writable cgroup2 hierarchy", err)
		}
		t.Skipf("cgroup: %v", err)
	}
	top := fmt.Sprintf("collectord-test-%d-%d.slice", os.Getpid(), cgroupSeq.Add(1))
	dir := filepath.Join(root, top, rel)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cgroup: %v", err)
		}
		t.Skipf("cgroup: cannot create one: %v", err)
	}
	t.Cleanup(func() {
		for d := dir; d != root; d = filepath.Dir(d) {
			if err := os.Remove(d); err != nil {
				t.Errorf("remove cgroup: %v", err)
				return
			}
		}
	})
	return &Cgroup{Dir: dir, Path: "/" + filepath.Join(top, rel)}
}

// Add moves process pid into the cgroup.
func (c *Cgroup) Add(t testing.TB, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(c.Dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("move pid %d into %s: %v", pid, c.Path, err)
	}
}

var errNoV1 = fmt.Errorf("no cgroup v1 name=systemd hierarchy mounted")

// cgroupRoot finds where the hierarchy is mounted: cgroup2 (at
// /sys/fs/cgroup on a unified host, /sys/fs/cgroup/unified on a hybrid
// one), or cgroup v1 with the name=systemd option.
func cgroupRoot(v1 bool) (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || pf[3] != "/" {
			continue
		}
		switch {
		case !v1 && qf[0] == "cgroup2":
			return pf[4], nil
		case v1 && qf[0] == "cgroup" && strings.Contains(","+qf[2]+",", ",name=systemd,"):
			return pf[4], nil
		}
	}
	if v1 {
		return "", errNoV1
	}
	return "", fmt.Errorf("no cgroup2 hierarchy mounted")
}
