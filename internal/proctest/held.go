package proctest

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// Held is a child process that runs until the test lets it go: it exits
// when its stdin closes, and reports on its stdout a line at a time.
type Held struct {
	Cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
}

// StartHeld starts cmd (typically a ChildCommand) with pipes to its stdin
// and stdout; it is released when the test ends, if not before.
func StartHeld(t testing.TB, cmd *exec.Cmd) *Held {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &Held{Cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	t.Cleanup(func() { h.Release(t) })
	return h
}

// Expect reads the child's next line and fails the test unless it is line.
func (h *Held) Expect(t testing.TB, line string) {
	t.Helper()
	if got, err := h.out.ReadString('\n'); strings.TrimSuffix(got, "\n") != line {
		t.Fatalf("%s: %q, %v; want %q", h.Cmd.Args[0], got, err, line)
	}
}

// Pid is the child's process id.
func (h *Held) Pid() int { return h.Cmd.Process.Pid }

// CloseStdin lets the child exit, without reaping it.
func (h *Held) CloseStdin() { h.stdin.Close() }

// Release lets the child exit and reaps it, once; an exit status other
// than 0 fails the test.
func (h *Held) Release(t testing.TB) {
	t.Helper()
	if h.Cmd.ProcessState != nil {
		return
	}
	h.stdin.Close()
	if err := h.Cmd.Wait(); err != nil {
		t.Errorf("%s: %v", h.Cmd.Args[0], err)
	}
}
