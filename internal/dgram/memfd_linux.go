//go:build linux

package dgram

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotSealedMemfd means a descriptor passed as a large journald entry is
// not a memfd sealed with RequiredSeals (or not a memfd at all: a pipe, a
// regular file, a socket). Its contents could change or shrink while being
// read, so they are refused.
var ErrNotSealedMemfd = errors.New("dgram: descriptor is not a sealed memfd")

// RequiredSeals are the seals ReadSealedMemfd insists on, the same as
// journald: the size cannot change and nobody can write any more.
const RequiredSeals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// ReadSealedMemfd reads the contents of fd, which must be a memfd carrying
// at least RequiredSeals: journald's protocol for an entry too big for a
// datagram (an empty datagram with one such descriptor). It reads at most
// limit bytes from offset 0 (pread: the file offset is untouched) and never
// allocates more than that. It does not close fd.
//
// Results:
//   - err == nil: data holds the first min(size, limit) bytes and truncated
//     reports that the memfd was longer than limit.
//   - err matches ErrNotSealedMemfd: fd is not a memfd or lacks a seal;
//     nothing was read.
//   - any other err: fstat or read failed (EBADF, ...); data is nil.
//
// A negative limit is an error.
func ReadSealedMemfd(fd int, limit int64) (data []byte, truncated bool, err error) {
	if limit < 0 {
		return nil, false, fmt.Errorf("read memfd: negative limit %d", limit)
	}
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err == unix.EINVAL {
		// Only shmem and hugetlbfs files support seals.
		return nil, false, fmt.Errorf("read memfd: %w (file does not support seals)", ErrNotSealedMemfd)
	}
	if err != nil {
		return nil, false, fmt.Errorf("read memfd: %w", os.NewSyscallError("fcntl F_GET_SEALS", err))
	}
	if seals&RequiredSeals != RequiredSeals {
		return nil, false, fmt.Errorf("read memfd: %w (seals %#x, need %#x)", ErrNotSealedMemfd, seals, RequiredSeals)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, false, fmt.Errorf("read memfd: %w", os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, false, fmt.Errorf("read memfd: %w (mode %#o)", ErrNotSealedMemfd, st.Mode)
	}
	n := min(st.Size, limit)
	data = make([]byte, n)
	for off := int64(0); off < n; {
		k, err := unix.Pread(fd, data[off:], off)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, false, fmt.Errorf("read memfd: %w", os.NewSyscallError("pread", err))
		case k == 0:
			// The seals forbid shrinking, so this cannot happen.
			return nil, false, fmt.Errorf("read memfd: %w", io.ErrUnexpectedEOF)
		}
		off += int64(k)
	}
	return data, st.Size > limit, nil
}
