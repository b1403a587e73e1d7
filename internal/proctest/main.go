package proctest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// childEnv names, in a child's environment, the child that ChildCommand
// asked the test binary to run as.
const childEnv = "PROCTEST_CHILD"

// mainRan is set once Main runs the tests: Binary and ChildCommand need it.
var mainRan atomic.Bool

// Main is a package's TestMain; it does not return.
//
// When ChildCommand started the test binary as the child name, Main runs
// children[name] with the child's arguments instead of the tests, and
// exits 0 if it returns nil, or prints the error and exits 1. (A child may
// also exit with a status of its own.) An unknown name exits 2.
//
// Otherwise it runs the tests. When the test binary is race-built, it
// first sets GORACE=atexit_sleep_ms=0 for every process the tests start:
// the race runtime would sleep a second at each exit. After the tests it
// removes what Binary built.
func Main(m *testing.M, children map[string]func(args []string) error) {
	if name, ok := os.LookupEnv(childEnv); ok {
		os.Exit(runChild(name, children))
	}
	if Race {
		os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	}
	mainRan.Store(true)
	code := m.Run()
	removeBuilds()
	os.Exit(code)
}

// runChild runs the child name with the arguments after "--" and returns
// the exit status.
func runChild(name string, children map[string]func(args []string) error) int {
	// The child's own children are not children of the test binary.
	os.Unsetenv(childEnv)
	run := children[name]
	if run == nil {
		fmt.Fprintf(os.Stderr, "proctest: the test binary has no child %q\n", name)
		return 2
	}
	var args []string
	if i := slices.Index(os.Args, "--"); i >= 0 {
		args = os.Args[i+1:]
	}
	if err := run(args); err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", name, err)
		return 1
	}
	return 0
}

// ChildCommand returns the command that runs this test binary as the child
// name of Main, with args, as exec.CommandContext does: the child is killed
// when ctx is done (t.Context() kills it when the test ends). The child
// is another process with its own pid, running this package's code
// without building anything. Its environment is this process's plus the
// variable that names the child; tests may add to cmd.Env.
//
// A test that hands a process to something other than os/exec (as
// upgrade.Start) may use the command's Path, Args and Env.
func ChildCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	if !mainRan.Load() {
		panic("proctest.ChildCommand: the package's TestMain must call proctest.Main, which runs the children")
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	// -test.run=^$: should Main not see the variable, the child runs no
	// test rather than all of them again.
	cmd := exec.CommandContext(ctx, exe, append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	return cmd
}
