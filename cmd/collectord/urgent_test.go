//go:build linux

package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
)

// syscallLine is one system call of a strace -f -ttt -T trace.
type syscallLine struct {
	start, end float64 // seconds since the epoch
	name, args string  // args: everything between the parentheses and the result
	result     string
}

var (
	straceLine       = regexp.MustCompile(`^(\d+)\s+(\d+\.\d+) (\w+)\((.*)\) += (-?\w+).*<(\d+\.\d+)>$`)
	straceUnfinished = regexp.MustCompile(`^(\d+)\s+(\d+\.\d+) (\w+)\((.*) <unfinished \.\.\.>$`)
	straceResumed    = regexp.MustCompile(`^(\d+)\s+\d+\.\d+ <\.\.\. (\w+) resumed>(.*)\) += (-?\w+).*<(\d+\.\d+)>$`)
)

// readTrace parses the completed calls of a strace -f -ttt -T trace,
// joining the calls strace split (<unfinished ...>, <... resumed>) when
// two threads were in system calls at once.
func readTrace(t *testing.T, path string) []syscallLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []syscallLine
	pending := map[string]syscallLine{} // by thread id
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c syscallLine
		var dur string
		if m := straceLine.FindStringSubmatch(sc.Text()); m != nil {
			c.start, _ = strconv.ParseFloat(m[2], 64)
			c.name, c.args, c.result, dur = m[3], m[4], m[5], m[6]
		} else if m := straceUnfinished.FindStringSubmatch(sc.Text()); m != nil {
			c.start, _ = strconv.ParseFloat(m[2], 64)
			c.name, c.args = m[3], m[4]
			pending[m[1]] = c
			continue
		} else if m := straceResumed.FindStringSubmatch(sc.Text()); m != nil && pending[m[1]].name == m[2] {
			c = pending[m[1]]
			delete(pending, m[1])
			c.args += m[3]
			c.result, dur = m[4], m[5]
		} else {
			continue
		}
		d, _ := strconv.ParseFloat(dur, 64)
		c.end = c.start + d
		out = append(out, c)
	}
	return out
}

// fileRange is [off, off+len) of the ring file, from a msync call's
// arguments and the mapping's base address.
func (c syscallLine) fileRange(t *testing.T, base uint64) (lo, hi uint64, ok bool) {
	var addr, n uint64
	var flags string
	if _, err := fmt.Sscanf(c.args, "0x%x, %d, %s", &addr, &n, &flags); err != nil || flags != "MS_SYNC" || addr < base {
		return 0, 0, false
	}
	return addr - base, addr - base + n, true
}

// ringMapping returns the address at which process pid maps the ring file
// at path for writing.
func ringMapping(t *testing.T, pid int, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 6 && f[5] == path && f[1] == "rw-s" && f[2] == "00000000" {
			lo, _, _ := strings.Cut(f[0], "-")
			a, err := strconv.ParseUint(lo, 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
	}
	t.Fatalf("no writable mapping of %s in process %d:\n%s", path, pid, b)
	return 0
}

// recordPages returns the file offsets of the data and of the descriptor
// of record seq in the ring file at path (layout version 1, pkg/shmring).
func recordPages(t *testing.T, path string, seq uint64) (data, desc uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	size, count, descOff, dataOff := le.Uint64(b[16:]), le.Uint64(b[24:]), le.Uint64(b[32:]), le.Uint64(b[40:])
	desc = descOff + 16*(seq&(count-1))
	if le.Uint64(b[desc:]) != seq {
		t.Fatalf("descriptor of seq %d names seq %d", seq, le.Uint64(b[desc:]))
	}
	return dataOff + le.Uint64(b[desc+8:])&(size-1), desc
}

// TestUrgentDurableBeforeNextDatagram traces the daemon's system calls
// with strace: after the recvmmsg that takes a crit datagram, and before
// the one that takes the next datagram (sent as soon as the crit record
// is published, while the sync may still run),
// the daemon msyncs (MS_SYNC) the page holding the record, then the page
// holding its descriptor, then the header. An info record is synced by
// the timer within sync_interval of its arrival.
func TestUrgentDurableBeforeNextDatagram(t *testing.T) {
	strace := proctest.NeedTool(t, "strace")
	dir := diskDir(t)
	const interval = time.Second
	d := proctest.StartDaemon(t, dir, proctest.DaemonOptions{
		Args: []string{"--storage", "persistent", "--sync-interval", interval.String()},
	})
	base := ringMapping(t, d.PID(), d.Ring)
	tracePath := filepath.Join(dir, "trace")
	tr := exec.Command(strace, "-f", "-ttt", "-T", "-qq", "-s", "64", "-e", "trace=msync,fdatasync,fsync,recvmmsg",
		"-o", tracePath, "-p", strconv.Itoa(d.PID()))
	if err := tr.Start(); err != nil {
		t.Fatal(err)
	}
	traced := make(chan error, 1)
	go func() { traced <- tr.Wait() }()
	stopTrace := func() {
		tr.Process.Signal(syscall.SIGINT) // strace detaches and exits
		<-traced
	}
	t.Cleanup(func() {
		if tr.ProcessState == nil {
			stopTrace()
		}
	})

	// Wait until strace sees the ingest loop: a probe shows in the trace.
	conn := proctest.DialDatagram(t, d.Socket)
	for i := 0; ; i++ {
		probe := fmt.Sprintf("<134>probe %d", i)
		d.Send(t, probe)
		b, _ := os.ReadFile(tracePath)
		if strings.Contains(string(b), probe) {
			break
		}
		if i == 1000 {
			t.Fatalf("strace does not see the daemon's recvmmsg:\n%s", b)
		}
	}

	// A crit record and, as soon as it is published (the sync follows the
	// publish), an info one: the daemon must not take it before the sync.
	critSeq := d.Send(t, "<130>crit record")
	if _, err := conn.Write([]byte("<134>after crit")); err != nil {
		t.Fatal(err)
	}
	proctest.WaitHead(t, d.Ring, critSeq+2)
	infoSeq := d.Send(t, "<134>info record")
	infoSent := time.Now()
	infoData, _ := recordPages(t, d.Ring, infoSeq)
	synced := func(calls []syscallLine, after float64, page uint64) (syscallLine, bool) {
		for _, c := range calls {
			if lo, hi, ok := c.fileRange(t, base); ok && c.name == "msync" && c.start >= after && lo <= page && page < hi && c.result == "0" {
				return c, true
			}
		}
		return syscallLine{}, false
	}
	recvOf := func(calls []syscallLine, msg string) syscallLine {
		t.Helper()
		for _, c := range calls {
			if c.name == "recvmmsg" && strings.Contains(c.args, msg) {
				return c
			}
		}
		t.Fatalf("no recvmmsg took %q:\n%v", msg, calls)
		return syscallLine{}
	}
	// The timer's sync of the info record: wait for it in the trace, up to
	// the interval and a margin for a loaded machine.
	var calls []syscallLine
	var infoSync syscallLine
	for deadline := infoSent.Add(interval + 5*time.Second); ; {
		calls = readTrace(t, tracePath)
		var ok bool
		if infoSync, ok = synced(calls, recvOf(calls, "info record").end, infoData); ok || time.Now().After(deadline) {
			break
		}
		d.Send(t, "<134>poll") // the trace file grows line by line
	}
	stopTrace()
	calls = readTrace(t, tracePath)

	critData, critDesc := recordPages(t, d.Ring, critSeq)
	recvCrit, recvNext := recvOf(calls, "crit record"), recvOf(calls, "after crit")
	// Records, then descriptors, then the header, all between the two.
	at := recvCrit.end
	for _, step := range []struct {
		what string
		page uint64
	}{{"the crit record's data", critData}, {"its descriptor", critDesc}, {"the header", 0}} {
		c, ok := synced(calls, at, step.page)
		if !ok || c.end > recvNext.start {
			t.Fatalf("%s (file offset %d) is not msynced after the crit datagram was taken (%.6f) and before the next one (%.6f), after the step before (%.6f); trace:\n%s",
				step.what, step.page, recvCrit.end, recvNext.start, at, dumpCalls(calls))
		}
		at = c.end
	}
	if infoSync.name == "" {
		t.Fatalf("the info record (file offset %d) was not msynced within %v; trace:\n%s", infoData, interval+5*time.Second, dumpCalls(calls))
	}
	recvInfo := recvOf(calls, "info record")
	if late := time.Duration((infoSync.end - recvInfo.end) * float64(time.Second)); late > interval+time.Second {
		t.Errorf("the info record was durable %v after it was taken, want within sync_interval %v (and a margin)", late, interval)
	} else {
		t.Logf("info record durable %v after it was taken (sync_interval %v)", late, interval)
	}
	d.Stop(t)
}

func dumpCalls(calls []syscallLine) string {
	var b strings.Builder
	for _, c := range calls {
		if c.name != "recvmmsg" || strings.Contains(c.args, "<") {
			fmt.Fprintf(&b, "%.6f-%.6f %s(%.80s) = %s\n", c.start, c.end, c.name, c.args, c.result)
		}
	}
	return b.String()
}
