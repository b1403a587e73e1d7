//go:build linux

package query

import (
	"encoding/binary"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tlsRecordHeaderSize is a TLS record's header: type, version, u16 length.
const tlsRecordHeaderSize = 5

// firstMessageQueued reports whether the client's whole first message
// already waits in the kernel's receive queue of nc: its hello frame, or
// with TLS its first record (the ClientHello). Such a client is not
// stalling: it is only waiting for its goroutine to run. It costs two
// system calls (FIONREAD, and a MSG_PEEK of the header) and never blocks.
func firstMessageQueued(nc net.Conn, tls bool) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	queued := false
	rc.Control(func(fd uintptr) {
		n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
		if err != nil || n < frameHeaderSize {
			return
		}
		var hdr [frameHeaderSize]byte
		if m, _, err := unix.Recvfrom(int(fd), hdr[:], unix.MSG_PEEK|unix.MSG_DONTWAIT); err != nil || m < len(hdr) {
			return
		}
		var need int
		if tls {
			need = tlsRecordHeaderSize + int(binary.BigEndian.Uint16(hdr[3:5]))
		} else {
			need = 4 + int(binary.LittleEndian.Uint32(hdr[:4])) // the length counts the type byte
		}
		queued = n >= need
	})
	return queued
}
