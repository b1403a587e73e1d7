// Package daemon runs collectord: it acquires the sockets, takes the ring's
// writer role, serves ingest and queries, and hands all of it to a new
// process on an in-place upgrade.
//
// # Sockets
//
// Each socket has a name: "ingest" (the datagram socket), "query" (the TCP
// query listener), "query-local" (the local query socket, a UNIX stream
// socket) and "metrics" (the HTTP listener). They come, by name,
// from the first of: the previous process of an in-place upgrade; systemd
// socket activation (LISTEN_FDS, LISTEN_FDNAMES, or systemd's fd store);
// binding them here. A socket bound here is also put into systemd's fd
// store (FDSTORE=1) when running under systemd, so that a plain restart gets
// it back with whatever is queued on it.
//
// One query.Server serves both query sockets. On the local one, root, the
// daemon's user and the members of the ring file's group (and of
// Config.Query.ReaderGroups) read every record, other users their own. Its
// file is 0666 and stays when the daemon stops (a client then gets
// "connection refused"); the next start replaces it if nobody serves it.
//
// # Upgrade
//
//	old process                         new process
//	-----------                         -----------
//	SIGHUP: RELOADING=1, start new  ->  acquire sockets, read config,
//	                                    map the ring read-only
//	                                <-  ready
//	stop accepting connections
//	stop reading, publish, unlock
//	                                ->  released
//	                                    lock ring, read socket, serve queries
//	                                <-  running
//	MAINPID=new, READY=1 (and no other notification from then on)
//	end queries (followers get their cursor), exit
//
// Exactly one process reads the datagram socket and writes the ring at any
// time. Datagrams sent during the handover wait in the socket's queue and TCP
// connections in the listener's backlog: none is lost or refused. The old
// process stops accepting before it releases the ring, so a client that
// connects during the handover is greeted by the new process rather than
// by one about to say "shutdown" (the servers accept on duplicates of the
// listening sockets, which closing leaves listening). It stops accepting
// first on SIGTERM too: under socket activation, connections then wait for
// the next instance. If the new process fails at any step before it runs,
// it is killed and the old one resumes, accepting again. One upgrade runs
// at a time.
//
// # Health
//
// The ingest loop keeps a heartbeat (ingestloop.Ingester.Health): it is
// healthy while it waits for datagrams, however long the socket stays
// idle, and while the batch it stores started less than 10 seconds ago.
// The systemd watchdog (WatchdogSec=) is pinged only while it is healthy,
// so a wedged loop is restarted by systemd rather than reported alive; and
// /readyz answers 503 whenever ingest is not running or is stuck: before
// it starts, during a handover once the old process has stopped reading,
// and after a stop. /healthz only says the process answers.
//
// # The socket file
//
// A datagram socket the daemon bound is removed on a clean stop, unless
// systemd keeps it in its fd store. An upgrade passes that duty on to the
// new process (COLLECTORD_SOCKET_FILE in its environment), so an upgraded
// daemon stops as cleanly as one that never was. A socket that was passed
// in (socket activation) is never removed: its owner created the file.
//
// # Concurrency
//
// Run owns the daemon: one goroutine runs its loop and owns every field;
// the goroutines it starts (ingest, the servers, the status loop, the
// watchdog) are stopped and waited for before Run returns. The metrics and
// status goroutines read the ingest loop's counters and heartbeat through
// atomics only.
package daemon
