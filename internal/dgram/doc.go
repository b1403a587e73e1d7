// Package dgram receives datagrams from a UNIX SOCK_DGRAM socket in batches,
// together with the sender's kernel-verified credentials and any file
// descriptors the sender passed. It is the daemon's ingest hot path.
//
// # Sockets
//
// [Listen] binds a socket at a path, replacing a stale socket file left by a
// dead daemon but refusing to touch a socket someone still serves or a file
// that is not a socket. [Prepare] applies the same options (SO_PASSCRED, a
// larger SO_RCVBUF) to a socket handed over by systemd socket activation or
// by a previous daemon. Neither ever puts the socket into blocking mode, so
// read deadlines keep working.
//
// # Receiving
//
// A [Receiver] allocates every buffer it needs once, in [NewReceiver]. Each
// call to [Receiver.Receive] waits (parked in the Go netpoller, not in the
// kernel) until at least one datagram is queued, then takes up to
// ReceiverOptions.BatchSize datagrams with a single recvmmsg(2) system call
// and returns them in arrival order. In steady state Receive makes no heap
// allocations.
//
// Ownership: the []Msg returned by Receive, and the Data and FDs slices in
// each Msg, point into the Receiver's own buffers. They are valid until the
// next call to Receive, which overwrites them; copy anything you keep. The
// file descriptors themselves are different: each one in Msg.FDs is a new
// descriptor (opened close-on-exec) that belongs to the caller, who must
// close it, or keep it, before calling Receive again (see [Msg.CloseFDs]).
// Receive never closes them.
//
// A Receiver is not safe for concurrent use: one goroutine owns it. To stop
// a blocked Receive, set a read deadline on the connection
// (conn.SetReadDeadline(time.Now())) or close it; Receive then returns an
// error that matches os.ErrDeadlineExceeded or net.ErrClosed with errors.Is.
// A deadline stops reading without closing the socket, so datagrams that
// arrive later wait in the kernel queue for whoever reads next (a restarted
// daemon that inherited the socket).
//
// # Credentials and passed descriptors
//
// With SO_PASSCRED on, the kernel attaches the sending process's pid, uid
// and gid to every datagram (SCM_CREDENTIALS). These are the only sender
// identity to trust; the text of a message can claim anything. Descriptors
// sent with SCM_RIGHTS arrive in Msg.FDs, at most ReceiverOptions.MaxFDs per
// datagram; the kernel closes any extra ones and the Msg reports
// ControlTruncated. journald's protocol for entries too big for a datagram
// sends an empty datagram with one sealed memfd; [ReadSealedMemfd] reads it
// safely.
//
// # Limits
//
//   - A datagram longer than ReceiverOptions.MaxDatagram is cut to that
//     length; Msg.Truncated reports it and Msg.Size holds the original length.
//   - A sender cannot send a datagram larger than its own SO_SNDBUF (about
//     208 KiB with the usual net.core.wmem_default); bigger payloads must go
//     through a memfd.
//   - The number of datagrams a busy AF_UNIX datagram socket can hold is
//     bound by the sysctl net.unix.max_dgram_qlen, read when the socket is
//     created (see [MaxDgramQlen]), not by SO_RCVBUF: Linux charges each
//     queued datagram to the sender's send buffer and ignores the
//     receiver's SO_RCVBUF (a socket with a 2304-byte SO_RCVBUF was
//     measured holding 1 MB). Once the queue holds more than
//     max_dgram_qlen datagrams, senders block or get EAGAIN. The kernel
//     default is 10 (systemd raises it to 512 at boot): a burst beyond 11
//     queued datagrams blocks its sender. One Receive can still return
//     more, since blocked senders refill the queue while recvmmsg drains it. Listen still sets SO_RCVBUF as
//     configured, which costs nothing, but it does not absorb bursts.
//   - Memory: a Receiver holds BatchSize*MaxDatagram bytes of buffers
//     (16 MiB with the defaults). Only pages that datagrams actually touch
//     become resident, so with small messages the resident cost is small.
package dgram
