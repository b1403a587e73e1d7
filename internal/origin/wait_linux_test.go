package origin

import "golang.org/x/sys/unix"

type waitInfo = unix.Siginfo

// waitNoReap waits until process pid has exited, leaving it a zombie.
func waitNoReap(pid int, info *waitInfo) error {
	for {
		err := unix.Waitid(unix.P_PID, pid, info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}
