package kafkatest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
)

func TestMain(m *testing.M) {
	proctest.Main(m, nil)
}

// TestCluster: what kcat produced, Consume reads back with its headers,
// key and time; the cluster keeps it across SIGKILL and SIGTERM,
// restarting on the same ports; Freeze stops the process and Thaw lets it
// run; Dedupe counts a message produced twice.
func TestCluster(t *testing.T) {
	kcat := proctest.NeedTool(t, "kcat")
	c := Start(t, Options{})
	brokers := slices.Clone(c.Brokers)
	produce := func(seq int) {
		t.Helper()
		cmd := exec.Command(kcat, "-P", "-b", strings.Join(c.Brokers, ","), "-t", c.Topic, "-k", "box",
			"-H", fmt.Sprintf("seq=%d", seq), "-H", "ring_id=r1", "-H", "host=box")
		cmd.Stdin = strings.NewReader(fmt.Sprintf("message %d\n", seq))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat -P: %v\n%s", err, out)
		}
	}
	before := time.Now().Truncate(time.Millisecond)
	for seq := 1; seq <= 3; seq++ {
		produce(seq)
	}
	check := func(want int) []Message {
		t.Helper()
		msgs := c.Consume(t, want)
		if len(msgs) != want {
			t.Fatalf("consumed %d messages, want %d: %+v", len(msgs), want, msgs)
		}
		bySeq, dups := Dedupe(msgs)
		if dups != 0 || len(bySeq) != want {
			t.Fatalf("%d distinct seqs, %d duplicates; want %d, 0", len(bySeq), dups, want)
		}
		for seq := 1; seq <= want; seq++ {
			m := bySeq[uint64(seq)]
			wantHeaders := [][2]string{{"seq", strconv.Itoa(seq)}, {"ring_id", "r1"}, {"host", "box"}}
			if m.Payload != fmt.Sprintf("message %d", seq) || m.Key == nil || *m.Key != "box" ||
				!slices.Equal(m.Headers, wantHeaders) || m.RingID != "r1" || m.Host != "box" || m.Time.Before(before) {
				t.Errorf("seq %d: %+v", seq, m)
			}
		}
		return msgs
	}
	first := check(3)

	c.Kill(t)
	c.Restart(t)
	if !slices.Equal(c.Brokers, brokers) {
		t.Fatalf("restarted on %v, not %v", c.Brokers, brokers)
	}
	produce(4)
	if got := check(4); !containsAll(got, first) {
		t.Errorf("after SIGKILL the topic holds %+v, not the messages before %+v", got, first)
	}

	c.Freeze(t)
	if s := procState(t, c.PID(t)); s != "T" {
		t.Errorf("frozen kfaked is in state %q, want T (stopped)", s)
	}
	c.Thaw(t)
	c.Stop(t)
	c.Restart(t)
	produce(4)
	msgs := c.Consume(t, 4)
	if _, dups := Dedupe(msgs); len(msgs) != 5 || dups != 1 {
		t.Errorf("after producing seq 4 again: %d messages, %d duplicates; want 5, 1", len(msgs), dups)
	}
}

func containsAll(got, want []Message) bool {
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g Message) bool {
			return g.Partition == w.Partition && g.Offset == w.Offset && g.Seq == w.Seq && g.Payload == w.Payload
		}) {
			return false
		}
	}
	return true
}

// procState returns the state letter of process pid (/proc/PID/stat).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	_, after, _ := strings.Cut(string(b), ") ")
	state, _, _ := strings.Cut(after, " ")
	return state
}

// TestFreePorts: the ports are distinct, nothing listens on them, and
// they are below the ephemeral range, where no outgoing connection gets
// one.
func TestFreePorts(t *testing.T) {
	ports := FreePorts(t, 5)
	low := ephemeralLow()
	for i, p := range ports {
		if slices.Contains(ports[:i], p) {
			t.Errorf("port %d twice in %v", p, ports)
		}
		if p >= low {
			t.Errorf("port %d is in the ephemeral range (from %d)", p, low)
		}
	}
	for _, a := range Addrs(ports) {
		if c, err := (&net.Dialer{}).Dial("tcp", a); err == nil {
			c.Close()
			t.Errorf("something listens on %s", a)
		}
	}
}
