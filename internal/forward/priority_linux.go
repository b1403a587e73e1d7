package forward

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// schedIdle is Linux's SCHED_IDLE policy: run only on a CPU nothing else
// wants.
const schedIdle = 5

// setPriority puts every thread of this process under SCHED_IDLE (idle)
// or under the normal policy at nice value nice. On Linux both are per
// thread, and a new thread inherits them from the thread that creates it:
// once every existing thread is set, so are the threads the Go runtime
// starts later.
func setPriority(idle bool, nice int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Nice: int32(nice)}
	if idle {
		attr.Policy, attr.Nice = schedIdle, 0
	}
	// Twice: a thread created during the first pass by a thread not yet
	// set is set by the second.
	for range 2 {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("set the forwarder's priority: %w", err)
		}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetAttr(tid, &attr, 0); err != nil && err != unix.ESRCH {
				return fmt.Errorf("set the forwarder's priority: %w", err)
			}
		}
	}
	return nil
}
