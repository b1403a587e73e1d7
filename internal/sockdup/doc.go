// Package sockdup duplicates the descriptor behind a Go socket or file
// without touching its blocking mode.
//
// os.File.Fd and net's File methods switch a socket to blocking mode, and
// the mode is shared by every copy of the socket, including the ones other
// processes hold: after that, read deadlines no longer interrupt the
// daemon's ingest loop. Duplicating through SyscallConn().Control does not.
//
// Dup is safe for concurrent use; the descriptor it returns is the
// caller's to close.
package sockdup
