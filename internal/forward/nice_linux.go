package forward

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// lowerPriority gives every thread of this process the nice value n. On
// Linux nice is per thread, and a new thread inherits it from the thread
// that creates it: once every existing thread is lowered, so are the
// threads the Go runtime starts later.
func lowerPriority(n int) error {
	if n == 0 {
		return nil
	}
	// Twice: a thread created from a thread not yet lowered during the
	// first pass is lowered by the second.
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("lower the forwarder's priority: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil && err != unix.ESRCH {
				return fmt.Errorf("lower the forwarder's priority to nice %d: %w", n, err)
			}
		}
	}
	return nil
}
