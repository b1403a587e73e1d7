//go:build linux

package ingestloop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/syslog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/record/recordtest"
)

// goSyslogClient is the test binary's child "gosyslog": it logs to the
// socket at path with Go's log/syslog.
func goSyslogClient(path string) error {
	w, err := syslog.Dial("unixgram", path, syslog.LOG_WARNING|syslog.LOG_DAEMON, "gotag")
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := fmt.Fprint(w, "written at the writer's priority"); err != nil {
		return err
	}
	if err := w.Err("an error\n"); err != nil {
		return err
	}
	return w.Info("two\nlines")
}

// floodClient is the test binary's child "flood": it sends count
// datagrams "flood I" to the socket at path, with blocking sends: none is
// lost in the kernel, so every one reaches the rate limiter.
func floodClient(path, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	for i := range n {
		if _, err := c.Write([]byte("flood " + strconv.Itoa(i))); err != nil {
			return err
		}
	}
	return nil
}

// runClient runs a client process to completion and returns its pid.
func runClient(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, stderr.Bytes())
	}
	if stderr.Len() > 0 {
		t.Errorf("%s wrote to stderr: %s", cmd, stderr.Bytes())
	}
	return cmd.Process.Pid
}

// clientContext bounds a client process by waitTimeout.
func clientContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// checkStamp checks that a client's own timestamp lies within two seconds
// of the send (RFC 3164 stamps have whole seconds) and copies it to want.
func checkStamp(t *testing.T, got, want *record.Entry, before, after time.Time) {
	t.Helper()
	ts := time.Unix(0, got.SourceTime)
	if ts.Before(before.Add(-2*time.Second)) || ts.After(after.Add(2*time.Second)) {
		t.Errorf("SourceTime %v, want between %v and %v", ts, before, after)
	}
	want.SourceTime = got.SourceTime
}

// checkHost checks that the entry carries this host's name (in full or up
// to its first dot) and copies it to want.
func checkHost(t *testing.T, got, want *record.Entry) {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	short, _, _ := strings.Cut(host, ".")
	if h := string(got.Hostname); h != host && h != short {
		t.Errorf("Hostname = %q, want %q or %q", h, host, short)
	}
	want.Hostname = got.Hostname
}

// TestIngestLogger sends with util-linux logger(1) over the socket and
// checks each stored entry, including the trusted identity the kernel gave
// (logger's own pid, our uid) against what logger wrote in the text.
func TestIngestLogger(t *testing.T) {
	logger := proctest.NeedTool(t, "logger")
	h := startHarness(t, harnessOptions{})
	// -d: datagrams only (without it logger would fall back to a stream
	// connection, which this socket refuses); errors to stderr, which
	// runClient treats as a failure.
	base := []string{"-d", "-u", h.path, "--socket-errors=on"}
	const childPID = ^uint32(0) // in want.ClaimedPID: logger's own pid

	tests := []struct {
		name  string
		args  []string
		stdin string
		as    *syscall.Credential // run logger as this user (root only)
		want  []record.Entry      // PID, UID, GID and FlagCreds added by the test
		host  bool                // the message carries the host name
		// fix adjusts want to got where the value depends on the host.
		fix func(t *testing.T, got, want *record.Entry)
	}{
		{name: "default", args: []string{"-t", "app", "hello world"},
			want: []record.Entry{{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("hello world")}}},
		{name: "rfc3164", args: []string{"--rfc3164", "-t", "app", "hello 3164"}, host: true,
			want: []record.Entry{{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("hello 3164")}}},
		{name: "rfc5424", args: []string{"--rfc5424", "--sd-id", "zoo@123", "--sd-param", `tiger="hungry"`, "--msgid", "MID", "-t", "app", "hello 5424"},
			host: true,
			want: []record.Entry{{Format: record.FormatRFC5424, Priority: 13, Tag: []byte("app"), MsgID: []byte("MID"),
				Message: []byte("hello 5424"),
				Fields:  recordtest.Fields("timeQuality.tzKnown", "1", "timeQuality.isSynced", "?", "zoo@123.tiger", "hungry")}},
			fix: func(t *testing.T, got, want *record.Entry) {
				// Whether the clock is synchronised depends on the host.
				if len(got.Fields) == 3 {
					if v := string(got.Fields[1].Value); v == "0" || v == "1" {
						want.Fields[1].Value = got.Fields[1].Value
					}
				}
			}},
		{name: "stdin lines", args: []string{"-t", "app"}, stdin: "first line\nsecond line\n\tthird line\n",
			want: []record.Entry{
				{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("first line")},
				{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("second line")},
				{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("\tthird line")},
			}},
		{name: "priority", args: []string{"-p", "local3.err", "-t", "app", "on fire"},
			want: []record.Entry{{Format: record.FormatRFC3164, Priority: 19<<3 | 3, Tag: []byte("app"), Message: []byte("on fire")}}},
		{name: "pid", args: []string{"-i", "-t", "app", "with pid"},
			want: []record.Entry{{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), ClaimedPID: childPID, Message: []byte("with pid")}}},
		// A pid above PID_MAX_LIMIT (4194304) cannot exist, so logger
		// writes it in the text but cannot make the kernel vouch for it.
		{name: "claimed pid", args: []string{"--id=4194305", "-t", "app", "not my pid"},
			want: []record.Entry{{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), ClaimedPID: 4194305, Message: []byte("not my pid")}}},
		// An unprivileged sender claiming to be init: the text says 1, the
		// kernel says who it is.
		{name: "other user", args: []string{"--id=1", "-t", "app", "I am init"},
			as:   &syscall.Credential{Uid: 65534, Gid: 65534},
			want: []record.Entry{{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), ClaimedPID: 1, Message: []byte("I am init")}}},
		// A uid and gid that differ, so that swapping them shows.
		{name: "other group", args: []string{"-t", "app", "uid 65534, gid 65533"},
			as:   &syscall.Credential{Uid: 65534, Gid: 65533},
			want: []record.Entry{{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("uid 65534, gid 65533")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.CommandContext(clientContext(t), logger, append(append([]string{}, base...), tt.args...)...)
			uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
			if tt.as != nil {
				if os.Getuid() != 0 {
					t.Skip("running a client as another user needs root")
				}
				// The other user must reach the socket: t.TempDir() makes
				// a 0700 directory (and a subdirectory) under os.TempDir().
				dir := filepath.Dir(h.path)
				for _, d := range []string{dir, filepath.Dir(dir)} {
					if err := os.Chmod(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: tt.as}
				uid, gid = tt.as.Uid, tt.as.Gid
			}
			if tt.stdin != "" {
				cmd.Stdin = strings.NewReader(tt.stdin)
			}
			before := time.Now()
			pid := uint32(runClient(t, cmd))
			after := time.Now()
			// logger has exited, so everything it sent is queued: one
			// record per line, and nothing else (checked by the next
			// subtest's first record, or by the count at the end).
			got := h.next(t, len(tt.want))
			for i := range got {
				want := tt.want[i]
				want.Flags |= record.FlagCreds
				want.PID, want.UID, want.GID = pid, uid, gid
				if want.ClaimedPID == childPID {
					want.ClaimedPID = pid
				}
				checkStamp(t, &got[i], &want, before, after)
				if tt.host {
					checkHost(t, &got[i], &want)
				}
				if tt.fix != nil {
					tt.fix(t, &got[i], &want)
				}
				recordtest.Check(t, []byte(tt.name), &got[i], &want)
			}
		})
	}
	if t.Failed() {
		return
	}
	st := h.in.Stats()
	var n uint64
	for _, tt := range tests {
		if tt.as == nil || os.Getuid() == 0 {
			n += uint64(len(tt.want))
		}
	}
	if got := st.Datagrams[record.FormatRFC3164] + st.Datagrams[record.FormatRFC5424]; got != n {
		t.Errorf("stored %d syslog datagrams, want %d: %+v", got, n, st)
	}
}

// TestIngestPython sends with Python's logging.handlers.SysLogHandler. The
// script also prints each formatted message as JSON, so the test compares
// the stored message with exactly what Python meant to send, traceback
// newlines included.
func TestIngestPython(t *testing.T) {
	python := proctest.NeedTool(t, "python3")
	h := startHarness(t, harnessOptions{})
	const script = `
import json, logging, logging.handlers, socket, sys

class Echo(logging.Handler):
    def emit(self, record):
        sys.stdout.write(json.dumps(self.format(record)) + "\n")

log = logging.getLogger("app")
log.propagate = False
log.addHandler(logging.handlers.SysLogHandler(address=sys.argv[1], socktype=socket.SOCK_DGRAM))
log.addHandler(Echo())
log.warning("hello from python")
try:
    {}["missing"]
except KeyError:
    log.exception("lookup failed")
`
	cmd := exec.CommandContext(clientContext(t), python, "-c", script, h.path)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	pid := uint32(runClient(t, cmd))

	var sent []string
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var s string
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("python's echo: %v", err)
		}
		sent = append(sent, s)
	}
	if len(sent) != 2 || !strings.Contains(sent[1], "\nTraceback (most recent call last):\n") || !strings.HasSuffix(sent[1], "KeyError: 'missing'") {
		t.Fatalf("python formatted %q, want a message and a traceback", sent)
	}
	got := h.next(t, 2)
	for i, pri := range []uint8{1<<3 | 4, 1<<3 | 3} { // user.warning, user.err
		want := record.Entry{Format: record.FormatPython, Flags: record.FlagCreds, Priority: pri,
			PID: pid, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), Message: []byte(sent[i])}
		recordtest.Check(t, []byte(sent[i]), &got[i], &want)
	}
}

// TestIngestGoSyslog sends with Go's log/syslog from a child process (this
// test binary re-run as a client), so that the trusted PID is not ours.
func TestIngestGoSyslog(t *testing.T) {
	h := startHarness(t, harnessOptions{})
	cmd := proctest.ChildCommand(clientContext(t), "gosyslog", h.path)
	before := time.Now()
	pid := uint32(runClient(t, cmd))
	after := time.Now()
	if pid == uint32(os.Getpid()) {
		t.Fatalf("child pid %d is ours", pid)
	}

	got := h.next(t, 3)
	for i, w := range []struct {
		pri uint8
		msg string
	}{
		{3<<3 | 4, "written at the writer's priority"}, // daemon.warning, from Dial
		{3<<3 | 3, "an error"},                         // daemon.err; Go adds no second newline
		{3<<3 | 6, "two\nlines"},                       // daemon.info
	} {
		want := record.Entry{Format: record.FormatRFC3164, Flags: record.FlagCreds, Priority: w.pri,
			PID: pid, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), ClaimedPID: pid,
			Tag: []byte("gotag"), Message: []byte(w.msg)}
		checkStamp(t, &got[i], &want, before, after)
		recordtest.Check(t, []byte(w.msg), &got[i], &want)
	}
}
