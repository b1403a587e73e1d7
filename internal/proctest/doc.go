// Package proctest helps tests that run real processes: the module's own
// binaries, collectord as a daemon, the test binary itself as a child, and
// external tools such as util-linux logger. Only tests import it; no
// program does, and it is not part of any package's API.
//
// What it provides:
//
//   - Binary, Collectord and Logctl build a main package of the module once
//     per test binary, into a directory Main removes at the end, with the
//     race detector exactly when the test binary has it (Race).
//   - Main is the TestMain of a package that uses it: it runs the test
//     binary as a named child when ChildCommand started it as one, and
//     otherwise runs the tests, then removes the builds.
//   - StartDaemon runs collectord on a socket and ring in a test's
//     directory and waits until it says it is ready; the Daemon it returns
//     collects its log (an Output), sends to it, and stops it.
//   - OpenFDs and CheckNoFDLeak count this process's descriptors.
//   - NeedTool finds an external tool, skipping the test when it is not
//     installed, except in CI (CI=true), where a missing tool fails it.
//
// Guarantees: every process a helper starts is stopped, and every file it
// creates removed, by the test's cleanup or by Main, also when the test
// fails. Waits are woken by the event they wait for (a write, a futex
// wake-up, an exit); their timeouts are failure deadlines, never delays.
//
// Concurrency: Binary, NeedTool and OpenFDs may be called from parallel
// tests (builds are shared and made once); a Daemon and an Output are safe
// to read from any goroutine; Main belongs in TestMain alone.
//
// Limits: Linux only, except Binary, Main, ChildCommand, Output and
// NeedTool. It imports pkg/shmring and pkg/record to read rings, so the
// tests of those two packages cannot use it.
package proctest
