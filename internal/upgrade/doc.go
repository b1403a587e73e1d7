// Package upgrade replaces a running collectord with a new binary without
// losing a datagram or refusing a connection, as nginx (USR2), HAProxy (-x)
// and cloudflare/tableflip do: the old process starts the new one with its
// sockets, the new one initialises, and then a strict handover moves the
// single-writer role (reading the datagram socket, writing the ring) from
// the old process to the new.
//
// The package provides the mechanism and the protocol. The daemon decides
// when to upgrade, allows one upgrade at a time, stops and resumes its own
// reading, and takes and releases the ring lock.
//
// # Phases
//
//	old process (parent)                      new process (child)
//	--------------------                      -------------------
//	serving: reads socket, holds ring lock
//	Start(exe, args, env, files) ---fork/exec--> Inherited(): files, control
//	  (keeps serving)                            open config, map ring read-only,
//	                                             prepare sockets, metrics, ...
//	WaitReady(ctx) <---------- "ready" --------- Ready()
//	stop reading the datagram socket             WaitReleased(ctx)
//	publish, release the ring lock                 (datagrams queue in the
//	Released(ctx) ------------ "released" ------>   socket meanwhile)
//	                                             take the ring lock, read
//	  (returns nil) <--------- "running" -------- Running()
//	MAINPID=<new>, close listeners,              serving
//	drain query clients, exit
//
//	on any error before "running":
//	  WaitReady/Released return an error only after the child was killed
//	  (SIGKILL) and reaped; the old process takes the lock and reads again.
//	  The child may say why first:  <--- "failed: <reason>" --- Failed(reason)
//
// Only one process reads the datagram socket at any moment: the old one
// until it stops, nobody during the window (the kernel queues datagrams in
// the shared socket, up to net.unix.max_dgram_qlen, beyond which senders
// block or get EAGAIN), the new one from Running on. Listening TCP sockets
// are shared too: connections wait in the backlog and either process may
// accept them until the old one closes its copy, so none is refused.
//
// # Wire protocol, version 1
//
// The old process passes to the new one:
//
//   - fd 3: its end of a socketpair(AF_UNIX, SOCK_SEQPACKET), the control
//     socket. fd 3 is the control socket in every protocol version, so a
//     new process can always say that it does not speak the old one's.
//   - fd 4, 5, ...: the named files, in order.
//   - COLLECTORD_UPGRADE=1, the protocol version.
//   - COLLECTORD_UPGRADE_PPID=<old pid>. The new process trusts fds 3...
//     only if this is its parent, so a variable leaked into some other
//     process's environment is ignored.
//   - COLLECTORD_UPGRADE_FDNAMES=<name>:<name>:..., the names of fd 4, 5,
//     ... (systemd's fd name rules, so the same names work in
//     LISTEN_FDNAMES).
//
// Each control message is one packet of ASCII text, no terminator:
// "ready", "released", "running", "failed: <reason>". Anything else, at
// the wrong moment or out of order, is a protocol error (ErrProtocol). The
// other side closing its end (EOF, ECONNRESET, EPIPE) is ErrChildExited or
// ErrParentGone. Every wait takes a context; nothing blocks without one
// except sending, which cannot block because each side has at most two
// small messages in flight.
//
// # Guarantees
//
//   - Start never changes the non-blocking mode of the sockets it passes
//     (os/exec would: it calls os.File.Fd, which switches the shared open
//     socket to blocking mode, in the old process too, and then read
//     deadlines no longer stop the ingest loop).
//   - When Child.WaitReady or Child.Released returns an error, the child is
//     dead and reaped: it cannot be reading or holding the lock.
//   - After Child.Released returns nil, Abort does nothing and the old
//     process must not wait for the child: it exits, and the child is
//     re-parented (to systemd for a service, to the nearest subreaper
//     otherwise). The child is not killed when the old process exits
//     (no PR_SET_PDEATHSIG).
//   - Inherited unsets the variables, marks every inherited descriptor
//     close-on-exec, and the next upgrade passes them on explicitly.
//
// # Limits
//
//   - If the new process is killed after taking the lock but before the old
//     one read "running" (a timeout), the datagrams it had received and not
//     yet published are lost; records it published stay in the ring.
//   - A binary that predates this protocol ignores the variables and starts
//     as a fresh daemon; WaitReady then fails on its context and kills it.
//   - The package does not serialise upgrades: two concurrent Starts would
//     both hand over. The daemon allows one at a time.
//
// # With systemd
//
// The unit's NotifyAccess=main makes systemd ignore the new process until
// it is the main process. After Released returns nil, the old process
// sends "MAINPID=<new pid>" (and READY=1, STATUS=) with package sdnotify,
// then exits. The new process should not inherit WATCHDOG_PID, which names
// the old one: drop it from env passed to Start (keep WATCHDOG_USEC and
// NOTIFY_SOCKET). The new process writes the pid file with WritePIDFile.
package upgrade
