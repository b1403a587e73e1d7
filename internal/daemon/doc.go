// Package daemon runs collectord: it acquires the sockets, takes the ring's
// writer role, serves ingest and queries, and hands all of it to a new
// process on an in-place upgrade.
//
// # Sockets
//
// Each socket has a name: "ingest" (the datagram socket), "query" (the TCP
// query listener) and "metrics" (the HTTP listener). They come, by name,
// from the first of: the previous process of an in-place upgrade; systemd
// socket activation (LISTEN_FDS, LISTEN_FDNAMES, or systemd's fd store);
// binding them here. A socket bound here is also put into systemd's fd
// store (FDSTORE=1) when running under systemd, so that a plain restart gets
// it back with whatever is queued on it.
//
// # Upgrade
//
//	old process                         new process
//	-----------                         -----------
//	SIGHUP: RELOADING=1, start new  ->  acquire sockets, read config
//	                                <-  ready
//	stop reading, publish, unlock
//	                                ->  released
//	                                    lock ring, read socket, serve queries
//	                                <-  running
//	MAINPID=new, READY=1
//	end queries (followers get their cursor), exit
//
// Exactly one process reads the datagram socket and writes the ring at any
// time. Datagrams sent during the handover wait in the socket's queue and TCP
// connections in the listener's backlog: none is lost or refused. If the new
// process fails at any step before it runs, it is killed and the old one
// resumes. One upgrade runs at a time.
package daemon
