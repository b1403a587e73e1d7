// Package fdname holds systemd's rule for naming file descriptors
// (FileDescriptorName=, FDNAME= in the fd store, LISTEN_FDNAMES), which
// collectord's own upgrade handover follows too, so that one name works
// on every path a socket can take between processes.
//
// Check is a pure function, safe for concurrent use.
package fdname
