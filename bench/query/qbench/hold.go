//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/collectord/collectord/pkg/query"
)

// holders are one plain user's `logctl tail -f` processes on the local
// socket.
type holders struct{ cmds []*exec.Cmd }

// holdLocal starts count followers of uid's own records on the local
// socket at path, as uid, and returns once one more connection of uid is
// refused for the per-user cap: they hold every slot that user may have.
func holdLocal(logctl, path string, count int, uid uint32) (h *holders, err error) {
	h = &holders{}
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	cred := &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	addr := query.UnixPrefix + path
	for range count {
		cmd := exec.Command(logctl, "tail", "-f", "-n", "0", "--addr", addr)
		cmd.SysProcAttr = cred
		if err := cmd.Start(); err != nil {
			return h, fmt.Errorf("hold the local socket: %w", err)
		}
		h.cmds = append(h.cmds, cmd)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var stderr bytes.Buffer
		probe := exec.Command(logctl, "tail", "-n", "0", "--addr", addr)
		probe.SysProcAttr, probe.Stderr = cred, &stderr
		err := probe.Run()
		if err != nil && strings.Contains(stderr.String(), "too many connections from uid") {
			return h, nil
		}
		if time.Now().After(deadline) {
			return h, errors.New("hold the local socket: uid still admitted after 10s: is the per-user cap -hold?")
		}
		time.Sleep(50 * time.Millisecond) // the followers are still connecting
	}
}

// close interrupts the followers and waits for them.
func (h *holders) close() {
	for _, cmd := range h.cmds {
		cmd.Process.Signal(syscall.SIGINT)
	}
	for _, cmd := range h.cmds {
		cmd.Wait()
	}
}
