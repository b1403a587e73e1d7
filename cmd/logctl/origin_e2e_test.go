package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
)

// senderChild is the child "sender COMM SOCKET CGROUP-DIR MESSAGE...": it
// names itself COMM, moves itself into the cgroup (unless CGROUP-DIR is
// "-"), sends each MESSAGE as one datagram, says "sent" and waits until
// its stdin is closed, so that it is alive while the daemon reads them.
func senderChild(args []string) error {
	if err := os.WriteFile("/proc/self/comm", []byte(args[0]), 0); err != nil {
		return err
	}
	if args[2] != "-" {
		if err := os.WriteFile(filepath.Join(args[2], "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
			return err
		}
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: args[1]}); err != nil {
		return err
	}
	for _, m := range args[3:] {
		if _, err := syscall.Write(fd, []byte(m)); err != nil {
			return err
		}
	}
	os.Stdout.WriteString("sent\n")
	_, err = io.Copy(io.Discard, os.Stdin)
	return err
}

// send runs senderChild, waits until the daemon has stored its messages,
// and returns it still running (stopped at the test's end, or by
// Release).
func send(t *testing.T, d *proctest.Daemon, comm string, cg *proctest.Cgroup, msgs ...string) *proctest.Held {
	t.Helper()
	dir := "-"
	if cg != nil {
		dir = cg.Dir
	}
	_, head := proctest.RingState(t, d.Ring)
	s := proctest.StartHeld(t, proctest.ChildCommand(context.Background(), "sender", append([]string{comm, d.Socket, dir}, msgs...)...))
	s.Expect(t, "sent")
	proctest.WaitHead(t, d.Ring, head+uint64(len(msgs)))
	return s
}

// Real senders in real cgroups, through the real daemon: -u 'demo*'
// returns exactly the records of the process in system.slice/demo.service,
// with its trusted comm, exe, unit and cgroup; -u demo (journalctl's
// NAME.service) and --ring reads agree; --comm selects by command name; a
// sender that had exited before the daemon read its datagram gets no
// origin fields; short output names a sender without a tag by its comm.
func TestTailUnitAndComm(t *testing.T) {
	demo := proctest.NewCgroup(t, "system.slice/demo.service", false)
	other := proctest.NewCgroup(t, "system.slice/other.service", false)
	dir := openDir(t)
	d := startDaemon(t, dir, proctest.DaemonOptions{})

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)

	d.Send(t, "<13>before: from the test process, in no unit")
	a := send(t, d, "demo", demo, "demo one", "<13>demo two", "demo three")
	send(t, d, "other", other, "other one", "other two")
	send(t, d, "demo", nil, "named demo, in no unit")

	// An exited sender: the daemon is stopped while the sender sends,
	// exits and is reaped; then it reads the datagram.
	d.Signal(t, syscall.SIGSTOP)
	_, head := proctest.RingState(t, d.Ring)
	gone := proctest.ChildCommand(context.Background(), "sender", "gone", d.Socket, "-", "from an exited sender")
	gone.Stdin = strings.NewReader("")
	if out, err := gone.CombinedOutput(); err != nil {
		d.Signal(t, syscall.SIGCONT)
		t.Fatalf("sender gone: %v %s", err, out)
	}
	d.Signal(t, syscall.SIGCONT)
	proctest.WaitHead(t, d.Ring, head+1)

	want := []string{"demo one", "demo two", "demo three"}
	check := func(name string, recs []jsonRecord, want []string) {
		t.Helper()
		var got []string
		for _, r := range recs {
			got = append(got, r.Message)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: messages %q, want %q", name, got, want)
		}
	}
	for _, args := range [][]string{
		{"--addr", d.QueryAddr, "-u", "demo*"},
		{"--addr", d.QueryAddr, "-u", "demo"},
		{"--addr", d.QueryAddr, "--unit", "demo.service", "--unit", "nothing.service"},
		{"--ring", d.Ring, "-u", "demo*"},
	} {
		recs, _ := parseJSON(t, ok(t, append([]string{"tail", "-n", "all", "-o", "json"}, args...)...))
		check(strings.Join(args[2:], " "), recs, want)
		for _, r := range recs {
			if r.Unit != "demo.service" || r.Comm != "demo" || r.Exe != exe || r.Slice != "system.slice" ||
				r.Cgroup != demo.Path || r.PID == nil || int(*r.PID) != a.Pid() {
				t.Errorf("%q: %+v; want unit demo.service, comm demo, exe %s, cgroup %s, pid %d", args, r, exe, demo.Path, a.Pid())
			}
		}
	}
	recs, _ := parseJSON(t, ok(t, "tail", "-n", "all", "-o", "json", "--addr", d.QueryAddr, "--comm", "other"))
	check("--comm other", recs, []string{"other one", "other two"})
	recs, _ = parseJSON(t, ok(t, "tail", "-n", "all", "-o", "json", "--addr", d.QueryAddr, "--comm", "demo"))
	check("--comm demo", recs, append(want, "named demo, in no unit"))

	// The exited sender's record has kernel credentials but no origin
	// field: none could be read, none is guessed.
	recs, _ = parseJSON(t, ok(t, "tail", "-n", "1", "-o", "json", "--addr", d.QueryAddr))
	if r := recs[0]; r.Message != "from an exited sender" || r.PID == nil || r.Comm != "" || r.Exe != "" || r.Unit != "" || r.Cgroup != "" {
		t.Errorf("exited sender: %+v; want credentials and no origin fields", r)
	}

	// Short output: a record without a tag shows the comm, as journalctl.
	short := ok(t, "tail", "-n", "all", "--addr", d.QueryAddr, "-u", "demo")
	pid := strconv.Itoa(a.Pid())
	if !strings.Contains(short, " demo["+pid+"]: demo one\n") || !strings.Contains(short, " demo["+pid+"]: demo two\n") {
		t.Errorf("short output:\n%s\nwant lines naming demo[%s]", short, pid)
	}
	// A malformed pattern is refused, naming the filter.
	if r := logctl(t, "tail", "--addr", d.QueryAddr, "-u", "demo["); r.code == 0 || !strings.Contains(r.stderr, "unit") {
		t.Errorf("-u 'demo[': exit %d, stderr %q; want a usage error about the unit", r.code, r.stderr)
	}
}
