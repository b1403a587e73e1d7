//go:build linux

package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"syscall"
)

// localSocketMode lets every local user connect to the query socket: the
// server decides what each may read from the kernel's word on who they
// are.
const localSocketMode = 0o666

// listenLocal binds the local query socket, a UNIX stream socket, at path
// with mode localSocketMode. A socket file left by a daemon that died is
// replaced; one some process serves, or a file that is not a socket, is
// an error. The file stays when the listener is closed: after an upgrade
// the new process serves it, and a client of a stopped daemon gets
// "connection refused" rather than "no such file".
func listenLocal(path string) (*net.UnixListener, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil && errors.Is(err, syscall.EADDRINUSE) {
		if err := removeStale(path); err != nil {
			return nil, fmt.Errorf("listen %s: %w", path, err)
		}
		l, err = net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	}
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(path, localSocketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return l, nil
}

// removeStale removes path if it is a socket nobody serves.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is served by another process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	return os.Remove(path)
}

// unixListener makes a passed socket the local query listener; it must be
// a UNIX stream socket.
func unixListener(f *os.File) (net.Listener, error) {
	l, err := net.FileListener(f)
	if err != nil {
		return nil, err
	}
	ul, ok := l.(*net.UnixListener)
	if !ok {
		l.Close()
		return nil, fmt.Errorf("not a UNIX stream socket (%T)", l)
	}
	ul.SetUnlinkOnClose(false)
	return ul, nil
}
