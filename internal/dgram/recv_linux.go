//go:build linux

package dgram

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Defaults and limits for ReceiverOptions.
const (
	// DefaultBatchSize is the most datagrams one Receive returns when
	// ReceiverOptions.BatchSize is zero.
	DefaultBatchSize = 64
	// MaxBatchSize is the largest accepted ReceiverOptions.BatchSize: the
	// kernel's cap on one recvmmsg call (UIO_MAXIOV).
	MaxBatchSize = 1024
	// DefaultMaxDatagram is the per-datagram buffer size, in bytes, when
	// ReceiverOptions.MaxDatagram is zero. It is larger than any datagram a
	// sender with the default net.core.wmem_default can send.
	DefaultMaxDatagram = 256 << 10
	// MaxMaxDatagram is the largest accepted ReceiverOptions.MaxDatagram.
	// Payloads this big belong in a memfd.
	MaxMaxDatagram = 16 << 20
	// DefaultMaxFDs is how many passed descriptors one datagram may carry
	// when ReceiverOptions.MaxFDs is zero. journald clients send one.
	DefaultMaxFDs = 4
	// MaxMaxFDs is the largest accepted ReceiverOptions.MaxFDs: the
	// kernel's own limit per message (SCM_MAX_FD).
	MaxMaxFDs = 253
)

// recvFlags: never block in the kernel (the netpoller waits instead), open
// passed descriptors close-on-exec so they cannot leak into child
// processes, and have the kernel report a truncated datagram's full length.
const recvFlags = unix.MSG_DONTWAIT | unix.MSG_CMSG_CLOEXEC | unix.MSG_TRUNC

// ReceiverOptions configures NewReceiver. The zero value means defaults.
type ReceiverOptions struct {
	// BatchSize is the most datagrams one Receive returns, between 1 and
	// MaxBatchSize. Default DefaultBatchSize (64).
	BatchSize int
	// MaxDatagram is the buffer size for each datagram, in bytes, between
	// 1 and MaxMaxDatagram; longer datagrams are truncated and flagged.
	// Default DefaultMaxDatagram (256 KiB).
	MaxDatagram int
	// MaxFDs is the most descriptors accepted with one datagram, up to
	// MaxMaxFDs; the kernel closes the rest. Negative accepts none.
	// Default DefaultMaxFDs (4).
	MaxFDs int
}

// Creds are the sending process's credentials as the kernel recorded them
// when the datagram was sent (SCM_CREDENTIALS).
type Creds struct {
	PID, UID, GID uint32
	// OK reports that the kernel attached real credentials. It is false
	// when the socket did not have SO_PASSCRED on when the datagram was
	// sent: then there are none, or (for a datagram queued before Prepare
	// turned SO_PASSCRED on) the kernel reports pid 0 and the overflow
	// uid/gid 65534, which are not the sender's.
	OK bool
}

// Msg is one received datagram. Data and FDs alias the Receiver's buffers
// and are valid until the next Receive; the descriptors in FDs are the
// caller's to close.
type Msg struct {
	// Data is the datagram's payload, cut to ReceiverOptions.MaxDatagram.
	Data []byte
	// Size is the datagram's full length; it exceeds len(Data) exactly
	// when Truncated is set.
	Size int
	// Truncated reports that the datagram was longer than the buffer
	// (MSG_TRUNC); the tail was discarded by the kernel.
	Truncated bool
	// Creds identify the sender.
	Creds Creds
	// FDs are descriptors the sender passed with SCM_RIGHTS, already open
	// (close-on-exec) in this process. The caller must close them (see
	// CloseFDs) or keep them before the next Receive reuses this slice.
	FDs []int
	// ControlTruncated reports MSG_CTRUNC: the sender passed more than
	// ReceiverOptions.MaxFDs descriptors (or this process ran out of
	// descriptors), and the kernel closed the ones not in FDs.
	ControlTruncated bool
}

// CloseFDs closes the descriptors in m.FDs and empties it. To keep some
// descriptors, copy them out and set their entries to -1 first; negative
// entries are skipped. It must be called on the Msg in the slice Receive
// returned (msgs[i].CloseFDs()), not on a copy, for the emptying to stick.
func (m *Msg) CloseFDs() {
	for _, fd := range m.FDs {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	m.FDs = m.FDs[:0]
}

// mmsghdr is struct mmsghdr from <sys/socket.h>, which x/sys/unix lacks:
// a msghdr followed by the length received, padded to pointer alignment.
type mmsghdr struct {
	Hdr unix.Msghdr
	Len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

// Receiver reads datagrams in batches from one UNIX datagram socket. All
// its memory is allocated by NewReceiver. It is not safe for concurrent
// use; the slices it returns are valid until its next Receive.
type Receiver struct {
	rc          syscall.RawConn
	maxDatagram int
	maxFDs      int // per datagram; 0 means none
	ctrlStride  int // bytes of ctrl per datagram
	ctrlLen     int // control length offered to the kernel per datagram

	hdrs []mmsghdr
	iovs []unix.Iovec
	data []byte // maxDatagram bytes per datagram
	ctrl []byte // ctrlStride bytes per datagram
	fds  []int  // maxFDs per datagram, the backing of Msg.FDs
	msgs []Msg

	// read is r.recvmmsg, bound once so that Receive does not allocate a
	// method value on every call.
	read  func(fd uintptr) bool
	used  int // headers the kernel filled in the last call
	n     int
	errno syscall.Errno
}

// NewReceiver allocates a Receiver for conn, a UNIX datagram socket that
// normally comes from Listen or went through Prepare (without SO_PASSCRED
// no credentials arrive). The Receiver does not own conn: closing conn, or
// setting its read deadline, is how the caller stops a Receive.
func NewReceiver(conn *net.UnixConn, opts ReceiverOptions) (*Receiver, error) {
	batch := opts.BatchSize
	if batch == 0 {
		batch = DefaultBatchSize
	}
	if batch < 1 || batch > MaxBatchSize {
		return nil, fmt.Errorf("new receiver: BatchSize %d out of range [1, %d]", opts.BatchSize, MaxBatchSize)
	}
	maxDatagram := opts.MaxDatagram
	if maxDatagram == 0 {
		maxDatagram = DefaultMaxDatagram
	}
	if maxDatagram < 1 || maxDatagram > MaxMaxDatagram {
		return nil, fmt.Errorf("new receiver: MaxDatagram %d out of range [1, %d]", opts.MaxDatagram, MaxMaxDatagram)
	}
	maxFDs := opts.MaxFDs
	switch {
	case maxFDs == 0:
		maxFDs = DefaultMaxFDs
	case maxFDs < 0:
		maxFDs = 0
	case maxFDs > MaxMaxFDs:
		return nil, fmt.Errorf("new receiver: MaxFDs %d out of range [<0, %d]", opts.MaxFDs, MaxMaxFDs)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("new receiver: %w", err)
	}

	// The kernel writes the credentials first, then as many descriptors as
	// fit in what is left: ((space left) - sizeof(cmsghdr)) / sizeof(int).
	// Offering exactly CmsgLen(4*maxFDs) after the credentials makes that
	// maxFDs; the stride keeps every datagram's area aligned.
	credSpace := unix.CmsgSpace(unix.SizeofUcred)
	ctrlLen, ctrlStride := credSpace, credSpace
	if maxFDs > 0 {
		ctrlLen += unix.CmsgLen(4 * maxFDs)
		ctrlStride += unix.CmsgSpace(4 * maxFDs)
	}

	r := &Receiver{
		rc:          rc,
		maxDatagram: maxDatagram,
		maxFDs:      maxFDs,
		ctrlStride:  ctrlStride,
		ctrlLen:     ctrlLen,
		hdrs:        make([]mmsghdr, batch),
		iovs:        make([]unix.Iovec, batch),
		data:        make([]byte, batch*maxDatagram),
		ctrl:        make([]byte, batch*ctrlStride),
		fds:         make([]int, batch*maxFDs),
		msgs:        make([]Msg, batch),
	}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.data[i*maxDatagram]
		r.iovs[i].SetLen(maxDatagram)
		h := &r.hdrs[i].Hdr
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.ctrl[i*ctrlStride]
		h.SetControllen(ctrlLen)
	}
	r.read = r.recvmmsg
	return r, nil
}

// Receive waits until at least one datagram is queued on the socket, then
// returns up to BatchSize of them, oldest first, read with one recvmmsg(2)
// call. It makes no heap allocations, except to build an error.
//
// The returned slice, and each Msg's Data and FDs slices, are the
// Receiver's and are overwritten by the next Receive. The descriptors in
// each Msg.FDs belong to the caller, who must close or keep them before
// then.
//
// On error the slice is nil. When the socket's read deadline passes or the
// socket is closed, the error matches os.ErrDeadlineExceeded or
// net.ErrClosed with errors.Is; this is how a caller stops a blocked
// Receive. Datagrams still queued stay in the kernel for the next reader.
func (r *Receiver) Receive() ([]Msg, error) {
	// The kernel wrote back the control length and flags of the headers
	// it filled last time; restore them.
	for i := range r.used {
		h := &r.hdrs[i]
		h.Hdr.SetControllen(r.ctrlLen)
		h.Hdr.Flags = 0
		h.Len = 0
	}
	r.used, r.n, r.errno = 0, 0, 0
	if err := r.rc.Read(r.read); err != nil {
		return nil, fmt.Errorf("receive datagrams: %w", err)
	}
	r.used = r.n
	if r.errno != 0 {
		return nil, fmt.Errorf("receive datagrams: %w", os.NewSyscallError("recvmmsg", r.errno))
	}
	for i := range r.n {
		r.parse(i)
	}
	return r.msgs[:r.n], nil
}

// recvmmsg is called by RawConn.Read with the socket's descriptor. It
// returns false, to be called again when the socket becomes readable, only
// when no datagram is queued.
//
// recvFlags hold MSG_DONTWAIT, so the call never blocks, and it is made
// raw: without telling the Go scheduler, which would otherwise hand the P
// over and back around every call and keep its monitor thread waking every
// 20 µs to look for calls that block (a ninth of the daemon's CPU samples
// at 100-byte datagrams on a 2-CPU host).
func (r *Receiver) recvmmsg(fd uintptr) bool {
	for {
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(len(r.hdrs)),
			recvFlags, 0, 0)
		switch errno {
		case 0:
			r.n = int(n)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.errno = errno
			return true
		}
	}
}

// parse fills r.msgs[i] from the i'th header the kernel filled.
func (r *Receiver) parse(i int) {
	h := &r.hdrs[i]
	m := &r.msgs[i]

	size := int(h.Len)
	off := i * r.maxDatagram
	n := min(size, r.maxDatagram)
	m.Data = r.data[off : off+n : off+n]
	m.Size = size
	m.Truncated = h.Hdr.Flags&unix.MSG_TRUNC != 0
	m.ControlTruncated = h.Hdr.Flags&unix.MSG_CTRUNC != 0
	m.Creds = Creds{}
	fdOff := i * r.maxFDs
	m.FDs = r.fds[fdOff:fdOff:(fdOff + r.maxFDs)]

	clen := min(int(h.Hdr.Controllen), r.ctrlLen)
	ctrl := r.ctrl[i*r.ctrlStride:][:clen]
	r.parseControl(m, ctrl)
}

// parseControl walks the control messages in ctrl without allocating (unlike
// unix.ParseSocketControlMessage), checking every length before use.
func (r *Receiver) parseControl(m *Msg, ctrl []byte) {
	hdrLen := unix.CmsgLen(0)
	for len(ctrl) >= hdrLen {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		clen := int(c.Len)
		if clen < hdrLen || clen > len(ctrl) {
			return
		}
		data := ctrl[hdrLen:clen]
		if c.Level == unix.SOL_SOCKET {
			switch c.Type {
			case unix.SCM_CREDENTIALS:
				if len(data) >= unix.SizeofUcred {
					u := (*unix.Ucred)(unsafe.Pointer(&data[0]))
					m.Creds = Creds{PID: uint32(u.Pid), UID: u.Uid, GID: u.Gid, OK: u.Pid > 0}
				}
			case unix.SCM_RIGHTS:
				for ; len(data) >= 4; data = data[4:] {
					fd := int(*(*int32)(unsafe.Pointer(&data[0])))
					if len(m.FDs) < cap(m.FDs) {
						m.FDs = append(m.FDs, fd)
					} else {
						// Cannot happen with the control length we offer,
						// but never leak a descriptor.
						unix.Close(fd)
						m.ControlTruncated = true
					}
				}
			case unix.SCM_PIDFD:
				// Only if someone turned SO_PASSPIDFD back on; not ours
				// to keep.
				for ; len(data) >= 4; data = data[4:] {
					unix.Close(int(*(*int32)(unsafe.Pointer(&data[0]))))
				}
			}
		}
		next := unix.CmsgSpace(clen - hdrLen)
		if next >= len(ctrl) {
			return
		}
		ctrl = ctrl[next:]
	}
}
