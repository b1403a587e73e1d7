//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// timeResult is what time prints.
type timeResult struct {
	Command []string `json:"command"`
	summary          // wall time, fork to exit
	Bytes   int64    `json:"stdout_bytes"` // of every run (they must agree); 0 with -devnull
	// With -records: records per second at the median wall time.
	Records       int     `json:"records,omitempty"`
	RecordsPerSec float64 `json:"records_per_sec,omitempty"`
}

// runTime runs a command -runs times after -warmup unmeasured runs, stdout
// counted and discarded, and reports its wall time from fork to exit:
// process start included, as a user sees it. Every run must exit 0 and
// print the same number of bytes. Several commands separated by ":::" run
// in turn, one run of each per round, so that drifting load on the host
// affects them alike; then one object per command is printed, one per line.
func runTime(args []string) (any, error) {
	fs := flag.NewFlagSet("time", flag.ContinueOnError)
	runs := fs.Int("runs", 200, "measured runs")
	warmup := fs.Int("warmup", 10, "unmeasured runs first")
	records := fs.Int("records", 0, "records each run prints, to report records/s")
	devnull := fs.Bool("devnull", false, "send stdout to /dev/null (as `> /dev/null` does) instead of counting it through a pipe")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var cmds [][]string
	cur := []string{}
	for _, a := range fs.Args() {
		if a == ":::" {
			cmds, cur = append(cmds, cur), []string{}
			continue
		}
		cur = append(cur, a)
	}
	cmds = append(cmds, cur)
	for _, c := range cmds {
		if len(c) == 0 || *runs < 1 {
			return nil, errors.New("usage: qbench time [-runs R] [-warmup W] [-records N] [-devnull] -- COMMAND [ARG...] [::: COMMAND [ARG...]] (repeatable)")
		}
	}
	runtime.LockOSThread()
	res := make([]*timeResult, len(cmds))
	walls := make([][]time.Duration, len(cmds))
	for i, c := range cmds {
		res[i] = &timeResult{Command: c, Bytes: -1, Records: *records}
	}
	for round := range *warmup + *runs {
		for i, argv := range cmds {
			wall, n, err := timeOnce(argv, *devnull)
			if err != nil {
				return nil, err
			}
			if res[i].Bytes >= 0 && n != res[i].Bytes {
				return nil, fmt.Errorf("%q printed %d bytes, earlier %d", argv, n, res[i].Bytes)
			}
			res[i].Bytes = n
			if round >= *warmup {
				walls[i] = append(walls[i], wall)
			}
		}
	}
	for i, r := range res {
		r.summary = summarize(walls[i])
		if *records > 0 {
			r.RecordsPerSec = float64(*records) / (r.Median / 1e6)
		}
	}
	if len(res) == 1 {
		return res[0], nil
	}
	return multi(res), nil
}

// multi is several results: main prints one JSON object per line.
type multi []*timeResult

// timeOnce runs argv once and returns its wall time and how many bytes it
// printed (0 with devnull).
func timeOnce(argv []string, devnull bool) (time.Duration, int64, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	// The command dies with us (runTime keeps its goroutine on one
	// thread, which Pdeathsig follows).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stdout io.Reader
	if devnull {
		null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		if err != nil {
			return 0, 0, err
		}
		defer null.Close()
		cmd.Stdout = null
	} else {
		p, err := cmd.StdoutPipe()
		if err != nil {
			return 0, 0, err
		}
		stdout = p
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	var n int64
	var cerr error
	if stdout != nil {
		n, cerr = io.Copy(io.Discard, stdout)
	}
	err := cmd.Wait()
	wall := time.Since(t0)
	if err != nil || cerr != nil {
		return 0, 0, fmt.Errorf("%q: %w", argv, errors.Join(err, cerr))
	}
	return wall, n, nil
}
