//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/collectord/collectord/internal/flood"
)

// floodResult is what qbench flood prints when it is stopped.
type floodResult struct {
	Replaced int `json:"replaced"`
}

// runFlood holds -conns connections that never say hello on -addr
// (internal/flood) until SIGINT or SIGTERM, printing "held" once each is
// connected, then the connections the server dropped. The abuse benchmark
// runs it as a process of its own, as an attacker is: its goroutines and
// its garbage collector then cost what an attacker's would, and not the
// senders' process.
func runFlood(args []string) (any, error) {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	addr := fs.String("addr", "", "query server `host:port`")
	conns := fs.Int("conns", 0, "connections to hold")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *addr == "" || *conns < 1 {
		return nil, errors.New("-addr and -conns >= 1 are required")
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	f, err := flood.Start(*addr, flood.Options{Conns: *conns})
	if err != nil {
		return nil, err
	}
	fmt.Println("held")
	<-stop
	res := floodResult{Replaced: f.Replaced()}
	f.Close()
	return res, nil
}

// floodProc is a running qbench flood.
type floodProc struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

// startFlood runs qbench flood against addr and returns once its
// connections are connected.
func startFlood(addr string, conns int) (*floodProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "flood", "-addr", addr, "-conns", fmt.Sprint(conns))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &floodProc{cmd: cmd, out: bufio.NewReader(stdout)}
	if line, err := p.out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "held" {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		return nil, fmt.Errorf("qbench flood: %q, %v", line, err)
	}
	return p, nil
}

// stop stops the flood and returns how many connections the server
// dropped.
func (p *floodProc) stop() (int, error) {
	p.cmd.Process.Signal(syscall.SIGINT)
	var res floodResult
	err := json.NewDecoder(p.out).Decode(&res)
	if werr := p.cmd.Wait(); err == nil {
		err = werr
	}
	return res.Replaced, err
}
