//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// latencyResult is what latency prints.
type latencyResult struct {
	Command []string `json:"command"`
	Rate    int      `json:"rate"` // messages per second sent
	Sent    int      `json:"sent"`
	Printed int      `json:"printed"`
	Lost    uint64   `json:"lost"` // reported by logctl
	summary          // send to printed
}

// lossRE is logctl's loss notice.
var lossRE = regexp.MustCompile(`(?m)^logctl: (\d+) records lost`)

// runLatency measures how long a record takes from the sender's write to
// the line logctl tail -f -o json prints for it. It starts logctl with the
// given source flags (--addr HOST:PORT or --ring PATH), waits until it
// streams, then sends -n messages at -rate per second on a fixed schedule,
// each carrying its CLOCK_REALTIME send time in nanoseconds, and reads
// logctl's stdout, taking the time again as each line arrives.
func runLatency(args []string) (any, error) {
	fs := flag.NewFlagSet("latency", flag.ContinueOnError)
	socket := fs.String("socket", "", "daemon datagram socket `path`")
	logctl := fs.String("logctl", "logctl", "logctl `binary`")
	rate := fs.Int("rate", 1000, "messages per second")
	n := fs.Int("n", 10_000, "messages to measure")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *socket == "" || *rate < 1 || *n < 1 {
		return nil, errors.New("-socket, -rate >= 1 and -n >= 1 are required")
	}
	argv := append([]string{*logctl, "tail", "-f", "-n", "0", "-o", "json"}, fs.Args()...)
	cmd := exec.Command(argv[0], argv[1:]...)
	// logctl dies with us, also when we are killed. Pdeathsig follows the
	// thread that started it: keep this goroutine on that thread.
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}()

	// The reader owns lat until done is closed.
	live := make(chan struct{})
	done := make(chan struct{})
	var lat []time.Duration
	var readErr error
	go func() {
		defer close(done)
		var liveOnce sync.Once
		br := bufio.NewReaderSize(stdout, 64<<10)
		for len(lat) < *n {
			line, err := br.ReadSlice('\n')
			now := time.Now().UnixNano()
			if err != nil {
				readErr = fmt.Errorf("read logctl output after %d lines: %w", len(lat), err)
				return
			}
			// The whole object is decoded: other keys (the trusted origin
			// fields among them) may follow "message".
			var rec struct {
				Message string `json:"message"`
			}
			switch {
			case json.Unmarshal(line, &rec) != nil:
				readErr = fmt.Errorf("unexpected line %q", line)
				return
			case strings.HasPrefix(rec.Message, "ready "):
				liveOnce.Do(func() { close(live) })
				continue
			}
			f := strings.Fields(rec.Message)
			if len(f) != 3 || f[0] != "lat" {
				readErr = fmt.Errorf("unexpected line %q", line)
				return
			}
			sent, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil {
				readErr = fmt.Errorf("unexpected line %q", line)
				return
			}
			lat = append(lat, time.Duration(now-sent))
		}
	}()

	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: *socket, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	// Until logctl prints a marker, it is not streaming yet.
	deadline := time.After(10 * time.Second)
wait:
	for i := 0; ; i++ {
		if _, err := fmt.Fprintf(c, "<14>lat: ready %d", i); err != nil {
			return nil, err
		}
		select {
		case <-live:
			break wait
		case <-done:
			return nil, fmt.Errorf("%v: %s", readErr, stderr.String())
		case <-deadline:
			return nil, fmt.Errorf("logctl printed no marker within 10s: %s", stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Let the markers drain before the clock starts.
	time.Sleep(100 * time.Millisecond)

	period := time.Second / time.Duration(*rate)
	start := time.Now()
	var buf []byte
	for i := range *n {
		time.Sleep(time.Until(start.Add(time.Duration(i) * period)))
		buf = fmt.Appendf(buf[:0], "<14>lat: lat %d %d", i, time.Now().UnixNano())
		if _, err := c.Write(buf); err != nil {
			return nil, err
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Signal(syscall.SIGINT)
		<-done
	}
	res := latencyResult{Command: argv, Rate: *rate, Sent: *n, Printed: len(lat)}
	for _, m := range lossRE.FindAllStringSubmatch(stderr.String(), -1) {
		l, _ := strconv.ParseUint(m[1], 10, 64)
		res.Lost += l
	}
	if readErr != nil && len(lat) < *n {
		return nil, fmt.Errorf("%v; stderr: %s", readErr, stderr.String())
	}
	res.summary = summarize(lat)
	return res, nil
}
