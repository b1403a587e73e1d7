//go:build linux

// Command ceiling is the yardstick of the ingest benchmarks: the most
// datagrams per second this host receives on the kind of socket collectord
// reads, with the least work the kernel allows.
//
//	ceiling -socket PATH -expect N [-idle D] [-timeout D] [-ready FILE] [-rcvbuf BYTES]
//
// It binds a blocking AF_UNIX SOCK_DGRAM socket at PATH with SO_PASSCRED
// and the same receive buffer as collectord's default (-rcvbuf, 8 MiB,
// SO_RCVBUFFORCE when allowed). One goroutine, locked to its OS thread,
// blocks in recvmmsg(2) with MSG_WAITFORONE for up to 64 datagrams of up to
// 64 KiB each, with room for SCM_CREDENTIALS; for each datagram it only
// adds its length and checks that credentials came with it. There is no
// netpoller, no parsing, no copy beyond the kernel's, and no collectord
// package is imported: it must not share the code it judges
// (bench/ingest/baseline runs the daemon's own receive loop,
// internal/dgram, for that comparison). It
// exits once it has received N datagrams, and writes "ready" to the -ready
// file once the socket is bound. With -idle it also ends, normally, when
// datagrams have come and then none for that long: for senders that drop
// some (loadgen -drop), whose count is known only afterwards; the times it
// reports are then no measure of a rate.
//
// A run always ends: a watchdog goroutine checks the count ten times a
// second and, when it has not moved for -timeout, shuts the socket down
// for reading (shutdown(2) wakes the blocked recvmmsg), and the command
// exits 1.
//
// It prints one line of JSON (see result) on stdout and exits 1 if any
// datagram came without credentials or was truncated.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	batch   = 64       // datagrams per recvmmsg(2) call, as the daemon
	bufSize = 64 << 10 // bytes per datagram buffer
)

// result is what ceiling prints.
type result struct {
	Received  int   `json:"received"`
	Bytes     int64 `json:"bytes"`
	NoCreds   int   `json:"no_creds"`  // datagrams without SCM_CREDENTIALS or with pid 0
	Truncated int   `json:"truncated"` // datagrams longer than a buffer
	Batches   int   `json:"batches"`   // recvmmsg calls
	MaxBatch  int   `json:"max_batch"` // most datagrams one call returned
	// FirstUnixNano and LastUnixNano are the wall-clock times the first
	// and the last call returned, to compare with a sender's clock.
	FirstUnixNano int64 `json:"first_unix_nano"`
	LastUnixNano  int64 `json:"last_unix_nano"`
	// CPU is the user plus system CPU time, in seconds, this process used
	// from "ready" to the last datagram.
	CPU float64 `json:"cpu"`
}

// mmsghdr is struct mmsghdr from <sys/socket.h>, which x/sys/unix lacks.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [unsafe.Sizeof(uintptr(0)) - 4]byte
}

func main() {
	socket := flag.String("socket", "", "datagram socket `path` to bind (required)")
	expect := flag.Int("expect", 0, "exit after receiving this many datagrams (required)")
	idle := flag.Duration("idle", 0, "end when no datagram arrived for this long after the first (0: never)")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up when no datagram arrives for this long")
	ready := flag.String("ready", "", "`file` to write \"ready\" to once the socket is bound")
	rcvbuf := flag.Int("rcvbuf", 8<<20, "SO_RCVBUF in `bytes` (collectord's default recv_buffer)")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected argument %q", flag.Arg(0))
	}
	if *socket == "" || *expect < 1 || *timeout <= 0 || *rcvbuf < 1 || *idle < 0 {
		fatalf("-socket and a positive -expect, -timeout and -rcvbuf are required")
	}
	fd, err := listen(*socket, *rcvbuf)
	if err != nil {
		fatalf("%v", err)
	}
	defer os.Remove(*socket)
	res, err := receive(fd, *expect, *idle, *timeout, *ready)
	unix.Close(fd)
	if err != nil {
		fatalf("%v", err)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.NoCreds > 0 || res.Truncated > 0 {
		fatalf("%d datagrams without credentials, %d truncated", res.NoCreds, res.Truncated)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ceiling: "+format+"\n", args...)
	os.Exit(1)
}

// listen returns a blocking datagram socket bound at path.
func listen(path string, rcvbuf int) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	if err == nil {
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvbuf); err == unix.EPERM {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
		}
	}
	if err == nil {
		os.Remove(path)
		err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("listen %s: %w", path, err)
	}
	return fd, nil
}

// receive reads expect datagrams from fd, or fewer with idle.
func receive(fd, expect int, idle, timeout time.Duration, ready string) (result, error) {
	credSpace := unix.CmsgSpace(unix.SizeofUcred)
	hdrs := make([]mmsghdr, batch)
	iovs := make([]unix.Iovec, batch)
	data := make([]byte, batch*bufSize)
	ctrl := make([]byte, batch*credSpace)
	for i := range hdrs {
		iovs[i].Base = &data[i*bufSize]
		iovs[i].SetLen(bufSize)
		h := &hdrs[i].hdr
		h.Iov = &iovs[i]
		h.SetIovlen(1)
		h.Control = &ctrl[i*credSpace]
		h.SetControllen(credSpace)
	}

	var ru0 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru0); err != nil {
		return result{}, fmt.Errorf("getrusage: %w", err)
	}
	if ready != "" {
		if err := os.WriteFile(ready, []byte("ready\n"), 0o644); err != nil {
			return result{}, err
		}
	}

	// The watchdog ends the run by shutting the socket down, after
	// setting stop to why: 1 idle (a normal end), 2 stalled.
	var progress atomic.Int64
	var stop atomic.Int32
	done := make(chan struct{})
	watchdog := make(chan struct{})
	go func() {
		defer close(watchdog)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		seen, since := int64(0), time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				p := progress.Load()
				switch {
				case p != seen:
					seen, since = p, now
				case idle > 0 && p > 0 && now.Sub(since) >= idle:
					stop.Store(1)
				case now.Sub(since) >= timeout:
					stop.Store(2)
				default:
					continue
				}
				if stop.Load() != 0 {
					unix.Shutdown(fd, unix.SHUT_RD)
					return
				}
			}
		}
	}()
	defer func() {
		close(done)
		<-watchdog
	}()

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var res result
	hdrLen := unix.CmsgLen(0)
	for res.Received < expect {
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])),
			batch, unix.MSG_WAITFORONE, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if why := stop.Load(); why == 1 {
			break
		} else if why == 2 {
			return res, fmt.Errorf("received %d of %d datagrams, then nothing for %v", res.Received, expect, timeout)
		}
		if errno != 0 {
			return res, fmt.Errorf("recvmmsg: %w", errno)
		}
		if res.Batches == 0 {
			res.FirstUnixNano = time.Now().UnixNano()
		}
		n := int(r)
		for i := range n {
			h := &hdrs[i]
			res.Bytes += int64(h.len)
			if h.hdr.Flags&unix.MSG_TRUNC != 0 {
				res.Truncated++
			}
			c := ctrl[i*credSpace:]
			cm := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
			if int(h.hdr.Controllen) < hdrLen+unix.SizeofUcred || cm.Level != unix.SOL_SOCKET ||
				cm.Type != unix.SCM_CREDENTIALS || (*unix.Ucred)(unsafe.Pointer(&c[hdrLen])).Pid <= 0 {
				res.NoCreds++
			}
			h.hdr.SetControllen(credSpace) // the kernel wrote back what it used
		}
		res.Received += n
		res.Batches++
		res.MaxBatch = max(res.MaxBatch, n)
		progress.Store(int64(res.Received))
	}
	res.LastUnixNano = time.Now().UnixNano()
	var ru1 unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru1); err != nil {
		return res, fmt.Errorf("getrusage: %w", err)
	}
	res.CPU = float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / 1e9
	return res, nil
}
