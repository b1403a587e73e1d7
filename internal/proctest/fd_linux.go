package proctest

import (
	"os"
	"testing"
)

// OpenFDs counts this process's open descriptors.
func OpenFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents) - 1 // the directory being read
}

// CheckNoFDLeak counts this process's open descriptors now and fails the
// test if there are more or fewer when it ends, after the cleanups
// registered later have run.
func CheckNoFDLeak(t testing.TB) {
	t.Helper()
	// The runtime opens the netpoller's descriptors at the first pollable
	// file and keeps them: make them exist before counting.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	pw.Close()
	before := OpenFDs(t)
	t.Cleanup(func() {
		if after := OpenFDs(t); after != before {
			t.Errorf("open descriptors: %d before, %d after; leaked %d", before, after, after-before)
		}
	})
}
