// Package sdnotify speaks the systemd service notification protocol
// (sd_notify(3)): it tells the service manager that the daemon is ready,
// reloading or stopping, keeps the watchdog fed, and stores file descriptors
// in systemd's per-service fd store, which go-systemd's daemon package cannot
// do because it never sends SCM_RIGHTS.
//
// # Protocol
//
// Every notification is one AF_UNIX datagram sent to the address in
// $NOTIFY_SOCKET: a filesystem path, or an abstract-namespace name when the
// variable starts with '@'. The payload is newline-separated KEY=VALUE
// assignments ("READY=1\nSTATUS=serving"). Descriptors travel in the same
// datagram as SCM_RIGHTS ancillary data. The kernel attaches the sender's
// pid, uid and gid; systemd uses them to decide whether to accept the
// message (NotifyAccess= in the unit).
//
// # Guarantees
//
//   - [New] reads $NOTIFY_SOCKET once. A [Notifier] is immutable afterwards
//     and safe for concurrent use; a nil *Notifier is valid and disabled.
//   - A disabled Notifier ($NOTIFY_SOCKET unset or empty: the daemon is not
//     run by systemd, or the unit is not Type=notify) accepts every call and
//     sends nothing; methods return nil unless their arguments are invalid
//     (so that mistakes show up outside systemd too). [Notifier.Enabled] tells the
//     difference when it matters (for example before relying on the fd
//     store).
//   - Each call opens a fresh close-on-exec socket, sends exactly one
//     datagram and closes the socket, as libsystemd does: there is nothing
//     to close and nothing that can go stale.
//   - Assignments are validated before sending: a value cannot smuggle in a
//     second assignment with a newline, fd names follow systemd's rules
//     (1-255 printable ASCII characters, no ':'), and a message longer than
//     [MaxMessage] bytes or with more than [MaxFDs] descriptors is refused
//     rather than truncated by the kernel or by systemd.
//   - Descriptors passed to [Notifier.Notify] and [Notifier.StoreFDs] stay
//     owned by the caller: the kernel duplicates them into the receiver. The
//     sender closes nothing.
//
// # NOTIFY_SOCKET stays set
//
// New does not unset $NOTIFY_SOCKET (sd_notify's unset_environment). An
// in-place upgrade re-executes the daemon, and the new process needs the
// variable to talk to systemd once it has become the main process. Whether
// other child processes may inherit it is the daemon's decision: it removes
// NOTIFY_SOCKET from their environment, or calls os.Unsetenv after New when
// it never re-executes itself. Likewise WATCHDOG_PID names the process
// systemd started; a re-executed daemon must not inherit a stale one (see
// [WatchdogInterval]).
//
// # Limits
//
//   - Sends block while systemd's notification queue is full, like
//     sd_notify. There is no timeout: a service manager that stops reading
//     is a broken system, and the watchdog will act on it.
//   - Only path and abstract addresses are supported; "vsock:" addresses
//     (notification from a VM to its host) make every send fail with
//     [ErrUnsupportedAddress].
//   - sd_notify_barrier (waiting until systemd has processed earlier
//     messages) is not implemented.
//   - With NotifyAccess=main, systemd drops messages from any process but
//     the main one; a new process started by an in-place upgrade can speak
//     only after the old one sent MAINPID=<new pid> ([Notifier.MainPID]).
package sdnotify
