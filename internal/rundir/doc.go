// Package rundir says where collectord's sockets and ring live by default,
// so that the daemon and logctl agree without configuration.
//
// As root: the datagram socket is /run/collector.sock and everything else
// (the ring, the local query socket query.sock) lives in /run/collectord.
// As any other user: everything lives in
// $XDG_RUNTIME_DIR/collectord, or, without XDG_RUNTIME_DIR, in a private
// directory /tmp/collectord-UID that must be owned by that user. A client
// run by such a user asks that user's own daemon if one serves there, and
// root's otherwise (QuerySockets).
//
// A ring kept on a disk (storage = "persistent") lives in StateDir:
// /var/lib/collectord as root, $XDG_STATE_HOME/collectord (or
// ~/.local/state/collectord) otherwise. Under systemd, the directories it
// made for the service ($RUNTIME_DIRECTORY, $STATE_DIRECTORY) come first.
//
// The functions read the environment and the effective uid each time
// they are called; they are safe for concurrent use and return fresh
// strings.
package rundir
