//go:build linux

package upgrade

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
)

// The test binary's child "new-process ROLE" is the new process of an
// upgrade started by a test; ROLE picks the behaviour (see runChild).
func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func([]string) error{
		"new-process": func(args []string) error { return runChild(args[0]) },
	})
}

// runChild is the new process. Roles:
//
//	serve             full handover, then report over TCP (see serve)
//	exit              exit 3 before ready
//	exit-after-ready  exit 5 after ready
//	fail-ready        report failure before ready
//	fail-released     report failure after the release
//	hang-ready        never say ready
//	hang-released     never say running
//	garbage           send a message that is not in the protocol
//	future            pretend the old process speaks protocol version 99
func runChild(role string) error {
	if role == "future" {
		os.Setenv(envVersion, "99")
		if _, err := Inherited(); err == nil {
			return errors.New("Inherited accepted protocol version 99")
		}
		os.Exit(4)
	}
	u, err := Inherited()
	if err != nil {
		return err
	}
	if u == nil {
		return errors.New("Inherited found no upgrade")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch role {
	case "serve":
		return serve(ctx, u)
	case "exit":
		os.Exit(3)
	case "fail-ready":
		return u.Failed("no ring for you")
	case "hang-ready":
		hang()
	case "garbage":
		return u.send("hello")
	}
	if err := u.Ready(); err != nil {
		return err
	}
	if role == "exit-after-ready" {
		os.Exit(5)
	}
	if err := u.WaitReleased(ctx); err != nil {
		return err
	}
	switch role {
	case "fail-released":
		return u.Failed("cannot lock ring: boom")
	case "hang-released":
		hang()
	}
	return fmt.Errorf("unknown role %q", role)
}

// hang blocks this thread until the process is killed.
func hang() {
	for {
		unix.Pause()
	}
}

// serve takes over the "dgram" socket and the "tcp" listener, reads
// datagrams until one says "end", then accepts one connection and writes a
// report to it:
//
//	pid=<pid>
//	names=<sorted file names>
//	nonblock+cloexec=<name>,<name>   (files with both flags set)
//	env=clean|leaked
//	msg=<datagram>                   (one line per datagram, in order)
func serve(ctx context.Context, u *Upgrade) error {
	var report strings.Builder
	fmt.Fprintf(&report, "pid=%d\n", os.Getpid())
	files := u.Files()
	names := slices.Sorted(maps.Keys(files))
	fmt.Fprintf(&report, "names=%s\n", strings.Join(names, ","))
	var flagged []string
	for _, name := range names {
		if fdFlags(files[name])&unix.FD_CLOEXEC != 0 && statusFlags(files[name])&unix.O_NONBLOCK != 0 {
			flagged = append(flagged, name)
		}
	}
	fmt.Fprintf(&report, "nonblock+cloexec=%s\n", strings.Join(flagged, ","))
	env := "clean"
	for _, k := range []string{envVersion, envPPID, envNames} {
		if _, ok := os.LookupEnv(k); ok {
			env = "leaked"
		}
	}
	fmt.Fprintf(&report, "env=%s\n", env)

	c, err := net.FileConn(files["dgram"])
	if err != nil {
		return err
	}
	conn := c.(*net.UnixConn)
	l, err := net.FileListener(files["tcp"])
	if err != nil {
		return err
	}
	ln := l.(*net.TCPListener)
	for _, f := range files {
		f.Close()
	}

	// Initialised: wait for the writer role.
	if err := u.Ready(); err != nil {
		return err
	}
	if err := u.WaitReleased(ctx); err != nil {
		return err
	}
	if err := u.Running(); err != nil {
		return err
	}

	deadline, _ := ctx.Deadline()
	conn.SetReadDeadline(deadline)
	buf := make([]byte, 1024)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("read datagram: %w", err)
		}
		if string(buf[:n]) == "end" {
			break
		}
		fmt.Fprintf(&report, "msg=%s\n", buf[:n])
	}
	ln.SetDeadline(deadline)
	client, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer client.Close()
	_, err = client.Write([]byte(report.String()))
	return err
}

// fdFlags returns F_GETFD of f without os.File.Fd.
func fdFlags(f syscall.Conn) int { return fcntl(f, unix.F_GETFD) }

// statusFlags returns F_GETFL of f without os.File.Fd.
func statusFlags(f syscall.Conn) int { return fcntl(f, unix.F_GETFL) }

func fcntl(f syscall.Conn, cmd int) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	v := -1
	if err := rc.Control(func(fd uintptr) {
		v, err = unix.FcntlInt(fd, cmd, 0)
	}); err != nil {
		return -1
	}
	if err != nil {
		return -1
	}
	return v
}
