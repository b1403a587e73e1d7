//go:build linux

package shmring

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Futex operations. No FUTEX_PRIVATE_FLAG: the word lives in a shared file
// mapping and is waited on from other processes.
const (
	futexWait = 0
	futexWake = 1
)

// futexWaitOn sleeps while *addr == val, for at most d (d <= 0: no limit).
// Spurious wake-ups are possible; callers re-check their condition.
// Syscall6 (not RawSyscall6) lets the Go scheduler run other goroutines.
func futexWaitOn(addr *uint32, val uint32, d time.Duration) {
	var ts *unix.Timespec
	if d > 0 {
		t := unix.NsecToTimespec(int64(d))
		ts = &t
	}
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWait, uintptr(val), uintptr(unsafe.Pointer(ts)), 0, 0)
}

// futexWakeAll wakes every waiter, in any process, sleeping on addr.
// FUTEX_WAKE never blocks, so it is a raw system call: the writer makes it
// once per batch, and the scheduler's bookkeeping around a system call
// would cost more than the call.
func futexWakeAll(addr *uint32) {
	unix.RawSyscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWake, uintptr(1<<31-1), 0, 0, 0)
}
