//go:build linux

// Command loadgen floods a collectord datagram socket with numbered log
// messages and reports how fast they went out.
//
//	loadgen -socket PATH [-senders N] [-size BYTES] [-count M]
//	        [-format rfc3164|raw] [-nonblock | -drop]
//	        [-ring PATH | -settle PID [-quiet D]]
//	        [-timeout D] [-spawn]
//
// Each sender is a goroutine with its own connected unixgram socket, as
// separate client processes would have; it writes M datagrams of exactly
// -size bytes with plain write(2) calls, like syslog(3) and logger(1). (Four
// goroutines and four separate loadgen processes measured the same rates;
// the goroutines share one pid, which is what the kernel stamps on every
// datagram.) Every datagram names its sender and carries a per-sender
// sequence number:
//
//	rfc3164: <13>Nov 24 22:31:11 loadgen[PID]: s=3 n=000123 xxxx...
//	raw:     s=3 n=000123 xxxx...
//
// so that bench/ingest/verify can prove every one was stored once, in
// order. The socket is blocking by default: a full receive queue
// (net.unix.max_dgram_qlen) stalls the sender in the kernel, so the send
// rate equals what the receiver takes. With -nonblock a sender that gets
// EAGAIN counts it, waits in poll(2) until the queue has room and sends the
// same datagram again: nothing is dropped either way. With -drop (also
// non-blocking) a sender never waits: a datagram the socket refuses is
// counted as dropped and the sender goes on with the next number, as a
// logger that must not block does; the receiver then gets the others.
//
// All sockets are connected before the clock starts, and the senders start
// together. With -ring, loadgen also waits (futex, no polling) until the
// daemon has published the last datagram to that ring file and reports the
// time from the first send to that moment: the daemon's end-to-end ingest
// rate. For a receiver that is not collectord, -settle PID instead waits
// until that process has been idle for -quiet (see settle.go) and reports
// the time until it was last busy. A write that blocks longer than
// -timeout, or a ring that does not reach the count (a receiver that does
// not settle) within -timeout, is an error (exit 1), so a run always ends.
//
// With -spawn, every datagram comes from a new, short-lived process, as
// from a `logger` per message: each sender runs loadgen again (hidden
// flag -one) once per datagram, which connects, sends that one datagram
// (blocking) and exits; the sender waits for it before starting the next.
// Its rfc3164 header names the child's own pid. -nonblock and -drop do
// not apply, and the result's pid is 0 (every datagram has its own).
//
// It prints one line of JSON (see result) on stdout.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/pkg/shmring"
)

// result is what loadgen prints. Rates are datagrams per second.
type result struct {
	Senders int    `json:"senders"`
	Size    int    `json:"size"`
	Count   int    `json:"count"` // per sender
	Format  string `json:"format"`
	PID     int    `json:"pid"`  // the credentials every datagram carries
	Sent    int    `json:"sent"` // datagrams written, those dropped included
	// StartUnixNano is the wall-clock time just before the first send, so
	// that a receiver in another process can time itself from it.
	StartUnixNano int64   `json:"start_unix_nano"`
	Elapsed       float64 `json:"elapsed"` // seconds from the first send to the last one returning
	Rate          float64 `json:"rate"`    // Sent / Elapsed
	EAGAIN        uint64  `json:"eagain"`  // nonblocking writes refused (then retried)
	Dropped       uint64  `json:"dropped"` // with -drop: datagrams refused, not retried
	// With -ring: seconds from the first send until the ring's head passed
	// the last datagram, and Sent divided by that. With -settle: seconds
	// until the receiver was last busy.
	StoredElapsed float64 `json:"stored_elapsed,omitempty"`
	StoredRate    float64 `json:"stored_rate,omitempty"`
	// FirstSeq is, with -ring, the ring's head before the first send: the
	// sequence number of the first datagram sent, if the ring stores
	// nothing else meanwhile (verify -from).
	FirstSeq uint64 `json:"first_seq,omitempty"`
}

type config struct {
	socket   string
	senders  int
	size     int
	count    int
	format   string
	nonblock bool
	drop     bool
	ring     string
	settle   int
	quiet    time.Duration
	timeout  time.Duration
	spawn    bool
	one      string // with -spawn, in the child: "ID:N", the datagram to send
}

func main() {
	var c config
	flag.StringVar(&c.socket, "socket", "", "collectord datagram socket `path` (required)")
	flag.IntVar(&c.senders, "senders", 1, "concurrent senders, each with its own socket")
	flag.IntVar(&c.size, "size", 100, "datagram size in `bytes`, exactly")
	flag.IntVar(&c.count, "count", 100000, "datagrams per sender")
	flag.StringVar(&c.format, "format", "rfc3164", "message format: rfc3164 or raw")
	flag.BoolVar(&c.nonblock, "nonblock", false, "nonblocking sockets: count EAGAIN, wait for room and resend")
	flag.BoolVar(&c.drop, "drop", false, "nonblocking sockets: count a refused datagram as dropped and go on")
	flag.StringVar(&c.ring, "ring", "", "ring file `path`: also wait until the daemon has published every datagram")
	flag.IntVar(&c.settle, "settle", 0, "receiver process `pid`: also wait until it has been idle for -quiet")
	flag.DurationVar(&c.quiet, "quiet", time.Second, "with -settle: how long the receiver must be idle")
	flag.DurationVar(&c.timeout, "timeout", 2*time.Minute, "give up after this long without progress on a write, or waiting for the ring")
	flag.BoolVar(&c.spawn, "spawn", false, "send every datagram from a new short-lived process (a logger per message)")
	flag.StringVar(&c.one, "one", "", "internal, for -spawn: send datagram `ID:N` and exit")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected argument %q", flag.Arg(0))
	}
	if c.one != "" {
		if err := sendOne(c); err != nil {
			fatalf("%v", err)
		}
		return
	}
	res, err := run(c)
	if err != nil {
		fatalf("%v", err)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(1)
}

func run(c config) (result, error) {
	switch {
	case c.socket == "":
		return result{}, errors.New("-socket is required")
	case c.senders < 1 || c.senders > 1024:
		return result{}, fmt.Errorf("-senders %d: must be between 1 and 1024", c.senders)
	case c.count < 1 || c.count > 1e9:
		return result{}, fmt.Errorf("-count %d: must be between 1 and 1e9", c.count)
	case c.format != "rfc3164" && c.format != "raw":
		return result{}, fmt.Errorf("-format %q: must be rfc3164 or raw", c.format)
	case c.timeout <= 0:
		return result{}, fmt.Errorf("-timeout %v: must be positive", c.timeout)
	case c.settle < 0 || (c.settle > 0 && c.ring != ""):
		return result{}, errors.New("-settle takes a pid, and not with -ring")
	case c.drop && c.nonblock:
		return result{}, errors.New("-drop and -nonblock exclude each other")
	case c.quiet <= 0:
		return result{}, fmt.Errorf("-quiet %v: must be positive", c.quiet)
	case c.spawn && (c.drop || c.nonblock):
		return result{}, errors.New("-spawn sends blocking: not with -drop or -nonblock")
	}
	pid := os.Getpid()
	stamp := time.Now().Format(time.Stamp)
	senders := make([]*sender, c.senders)
	defer func() {
		for _, s := range senders {
			if s != nil {
				unix.Close(s.fd)
			}
		}
	}()
	for i := range senders {
		msg, seqOff, err := message(c.format, stamp, pid, i, c.count, c.size)
		if err != nil {
			return result{}, err
		}
		fd, err := dial(c.socket, c.nonblock || c.drop, c.timeout)
		if err != nil {
			return result{}, fmt.Errorf("sender %d: %w", i, err)
		}
		senders[i] = &sender{fd: fd, msg: msg, seqOff: seqOff, seqLen: seqWidth(c.count), nonblock: c.nonblock, drop: c.drop}
	}

	var ring *shmring.Reader
	var head0 uint64
	if c.ring != "" {
		r, err := shmring.OpenReader(c.ring)
		if err != nil {
			return result{}, err
		}
		defer r.Close()
		ring, head0 = r, r.Head()
	}

	start := make(chan struct{})
	errs := make([]error, len(senders))
	var wg sync.WaitGroup
	for i, s := range senders {
		wg.Go(func() {
			<-start
			if c.spawn {
				errs[i] = spawnAll(c, i)
				return
			}
			errs[i] = s.send(c.count, c.timeout)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	t1 := time.Now()
	elapsed := t1.Sub(t0)
	if err := errors.Join(errs...); err != nil {
		return result{}, err
	}

	total := c.senders * c.count
	res := result{
		Senders: c.senders, Size: c.size, Count: c.count, Format: c.format, PID: pid * btoi(!c.spawn),
		Sent: total, StartUnixNano: t0.UnixNano(),
		Elapsed: elapsed.Seconds(), Rate: float64(total) / elapsed.Seconds(),
	}
	for _, s := range senders {
		res.EAGAIN += s.eagain
		res.Dropped += s.dropped
	}
	if ring != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		if accepted := uint64(total) - res.Dropped; accepted > 0 {
			last := head0 + accepted - 1
			if err := ring.Wait(ctx, last); err != nil {
				return result{}, fmt.Errorf("wait for ring %s to publish seq %d (head %d): %w", c.ring, last, ring.Head(), err)
			}
		}
		res.FirstSeq = head0
		res.setStored(time.Since(t0))
	}
	if c.settle > 0 {
		busy, err := settle(c.settle, t1, c.quiet, c.timeout)
		if err != nil {
			return result{}, err
		}
		res.setStored(busy.Sub(t0))
	}
	return res, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// spawnAll sends sender id's datagrams 0..count-1, each from a new
// process (loadgen -one id:n), one after the other.
func spawnAll(c config, id int) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	for n := range c.count {
		cmd := exec.Command(exe, "-one", strconv.Itoa(id)+":"+strconv.Itoa(n), "-socket", c.socket,
			"-size", strconv.Itoa(c.size), "-count", strconv.Itoa(c.count), "-format", c.format,
			"-timeout", c.timeout.String())
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("sender %d, datagram %d: %v: %s", id, n, err, out)
		}
	}
	return nil
}

// sendOne is the -spawn child: it sends the one datagram c.one names.
func sendOne(c config) error {
	ids, ns, ok := strings.Cut(c.one, ":")
	id, err1 := strconv.Atoi(ids)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("-one %q: want ID:N", c.one)
	}
	msg, seqOff, err := message(c.format, time.Now().Format(time.Stamp), os.Getpid(), id, c.count, c.size)
	if err != nil {
		return err
	}
	putDigits(msg[seqOff:seqOff+seqWidth(c.count)], n)
	fd, err := dial(c.socket, false, c.timeout)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	s := &sender{fd: fd, msg: msg}
	return s.write(c.timeout)
}

// setStored sets the stored time and rate.
func (r *result) setStored(d time.Duration) {
	r.StoredElapsed = d.Seconds()
	r.StoredRate = float64(r.Sent) / d.Seconds()
}

// sender is one client socket and its datagram, whose sequence digits are
// rewritten in place before each send.
type sender struct {
	fd             int
	msg            []byte
	seqOff, seqLen int
	nonblock, drop bool
	eagain         uint64
	dropped        uint64
}

// send writes count datagrams numbered 0..count-1, in order.
func (s *sender) send(count int, timeout time.Duration) error {
	digits := s.msg[s.seqOff : s.seqOff+s.seqLen]
	for n := range count {
		putDigits(digits, n)
		if err := s.write(timeout); err != nil {
			return fmt.Errorf("send datagram %d: %w", n, err)
		}
	}
	return nil
}

// write sends s.msg once, or with -drop counts it dropped. A blocking
// socket has SO_SNDTIMEO set to timeout, so a receiver that stops reading
// turns into EAGAIN here instead of a hang.
func (s *sender) write(timeout time.Duration) error {
	var deadline time.Time
	for {
		n, err := unix.Write(s.fd, s.msg)
		switch {
		case err == nil && n == len(s.msg):
			return nil
		case err == nil:
			return fmt.Errorf("short write: %d of %d bytes", n, len(s.msg))
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN && s.drop:
			s.dropped++
			return nil
		case err == unix.EAGAIN && s.nonblock:
			s.eagain++
			if deadline.IsZero() {
				deadline = time.Now().Add(timeout)
			}
			left := time.Until(deadline)
			if left <= 0 {
				return fmt.Errorf("receive queue still full after %v", timeout)
			}
			pfd := []unix.PollFd{{Fd: int32(s.fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(pfd, int(left.Milliseconds())+1); err != nil && err != unix.EINTR {
				return fmt.Errorf("poll: %w", err)
			}
		case err == unix.EAGAIN:
			return fmt.Errorf("write blocked longer than %v (SO_SNDTIMEO): %w", timeout, err)
		default:
			return fmt.Errorf("write: %w", err)
		}
	}
}

// dial returns a unixgram socket connected to path: blocking, with a send
// timeout, unless nonblock.
func dial(path string, nonblock bool, timeout time.Duration) (int, error) {
	typ := unix.SOCK_DGRAM | unix.SOCK_CLOEXEC
	if nonblock {
		typ |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	if !nonblock {
		tv := unix.NsecToTimeval(timeout.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("set SO_SNDTIMEO: %w", err)
		}
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", path, err)
	}
	return fd, nil
}

// seqWidth is the number of digits every sequence number is written with:
// enough for count-1, at least 6, so all datagrams have the same size.
func seqWidth(count int) int {
	return max(6, len(strconv.Itoa(count-1)))
}

// message builds sender id's datagram of exactly size bytes and returns the
// offset of its sequence digits (all zero for now).
func message(format, stamp string, pid, id, count, size int) ([]byte, int, error) {
	var prefix string
	if format == "rfc3164" {
		prefix = fmt.Sprintf("<13>%s loadgen[%d]: ", stamp, pid)
	}
	prefix += "s=" + strconv.Itoa(id) + " n="
	body := prefix + strings.Repeat("0", seqWidth(count))
	if size < len(body) {
		return nil, 0, fmt.Errorf("-size %d: the %s header needs at least %d bytes", size, format, len(body))
	}
	msg := make([]byte, size)
	copy(msg, body)
	if size > len(body) {
		msg[len(body)] = ' '
		for i := len(body) + 1; i < size; i++ {
			msg[i] = 'x'
		}
	}
	return msg, len(prefix), nil
}

// putDigits writes n in decimal, zero-padded to fill b.
func putDigits(b []byte, n int) {
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = byte('0' + n%10)
		n /= 10
	}
}
