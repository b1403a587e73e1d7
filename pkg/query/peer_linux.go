//go:build linux

package query

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// peerCred is who connected to a UNIX socket, as the kernel recorded it
// when the client called connect(2): its pid, uid, primary gid
// (SO_PEERCRED) and supplementary groups (SO_PEERGROUPS). A process that
// changes its credentials later, or passes the connection to another,
// keeps these.
type peerCred struct {
	pid    int32
	uid    uint32
	gid    uint32
	groups []uint32
}

// inAnyGroup reports whether the peer's primary or a supplementary group
// is one of groups.
func (p *peerCred) inAnyGroup(groups []uint32) bool {
	for _, g := range groups {
		if p.gid == g || slices.Contains(p.groups, g) {
			return true
		}
	}
	return false
}

// peerCredentials reads the credentials of the client at the other end
// of uc.
func peerCredentials(uc *net.UnixConn) (peerCred, error) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return peerCred{}, fmt.Errorf("peer credentials: %w", err)
	}
	var p peerCred
	var serr error
	err = rc.Control(func(fd uintptr) {
		var uc *unix.Ucred
		if uc, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); serr != nil {
			serr = fmt.Errorf("SO_PEERCRED: %w", serr)
			return
		}
		p.pid, p.uid, p.gid = uc.Pid, uc.Uid, uc.Gid
		p.groups, serr = peerGroups(int(fd))
	})
	if err = errors.Join(err, serr); err != nil {
		return peerCred{}, fmt.Errorf("peer credentials: %w", err)
	}
	return p, nil
}

// peerGroups reads SO_PEERGROUPS (Linux 4.13), which x/sys/unix does not
// wrap: an array of gid_t. A buffer too small is answered ERANGE with the
// size needed.
func peerGroups(fd int) ([]uint32, error) {
	buf := make([]byte, 64*4)
	for range 2 {
		n := uint32(len(buf))
		_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		switch {
		case errno == unix.ERANGE && int(n) > len(buf):
			buf = make([]byte, n)
			continue
		case errno != 0:
			return nil, fmt.Errorf("SO_PEERGROUPS: %w", errno)
		case n%4 != 0 || int(n) > len(buf):
			return nil, fmt.Errorf("SO_PEERGROUPS: %d bytes", n)
		}
		groups := make([]uint32, n/4)
		for i := range groups {
			groups[i] = binary.NativeEndian.Uint32(buf[4*i:])
		}
		return groups, nil
	}
	return nil, errors.New("SO_PEERGROUPS: the groups kept changing size")
}
