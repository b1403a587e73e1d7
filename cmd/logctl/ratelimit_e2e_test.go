package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
)

// A sender over its rate limit loses the excess, another sender loses
// nothing, and the daemon reports the loss in the ring: as an operator
// sees it, with logctl send as the flooder, util-linux logger as the
// bystander and logctl tail as the reader.
func TestRateLimitEndToEnd(t *testing.T) {
	logger := proctest.NeedTool(t, "logger")
	const flood, calm = 2000, 20
	dir := openDir(t)
	config := filepath.Join(dir, "collectord.toml")
	if err := os.WriteFile(config, []byte("rate_limit_burst = 50\nrate_limit_interval = \"300ms\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, dir, proctest.DaemonOptions{Args: []string{"--config", config}})
	defer d.Stop(t)

	lines := func(prefix string, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%s %d\n", prefix, i)
		}
		return b.String()
	}
	flooder := exec.Command(proctest.Logctl(t), "send", "--socket", d.Socket, "-t", "flood")
	flooder.Stdin = strings.NewReader(lines("flood", flood))
	bystander := exec.Command(logger, "-u", d.Socket, "-t", "calm")
	bystander.Stdin = strings.NewReader(lines("calm", calm))
	for _, c := range []*exec.Cmd{flooder, bystander} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*exec.Cmd{flooder, bystander} {
		if err := c.Wait(); err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	pid := uint32(flooder.Process.Pid)

	// The last note comes when the flooder's window ends, with nothing
	// more sent.
	deadline := time.Now().Add(e2eTimeout)
	for {
		recs, _ := parseJSON(t, ok(t, "tail", "--addr", d.QueryAddr, "-n", "100000", "-o", "json"))
		var stored, suppressed, calmSeen, notes int
		for _, r := range recs {
			switch {
			case r.Tag == "flood" && r.PID != nil && *r.PID == pid:
				stored++
			case r.Tag == "calm":
				calmSeen++
			case r.Tag == "collectord" && r.Fields["SUPPRESSED_PID"] == strconv.Itoa(int(pid)):
				n, _ := strconv.Atoi(r.Fields["SUPPRESSED"])
				if want := fmt.Sprintf("Suppressed %d messages from pid %d (uid %d)", n, pid, os.Getuid()); r.Message != want || r.Priority != 4 {
					t.Errorf("note %q at priority %d, want %q at 4 (warning)", r.Message, r.Priority, want)
				}
				suppressed += n
				notes++
			}
		}
		if stored+suppressed == flood && calmSeen == calm {
			if notes == 0 || stored < 50*notes || stored > 50*(notes+1) {
				t.Errorf("flooder stored %d with %d notes; want 50 per window", stored, notes)
			}
			t.Logf("flooder: %d stored, %d suppressed in %d notes; bystander: %d of %d", stored, suppressed, notes, calmSeen, calm)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: flooder %d stored + %d reported suppressed of %d; bystander %d of %d", e2eTimeout, stored, suppressed, flood, calmSeen, calm)
		}
		time.Sleep(50 * time.Millisecond) // polling the daemon's answer, not synchronising
	}
}
