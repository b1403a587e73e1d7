package kafkatest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
)

// kfakedPath is the import path of the cluster's main package.
const kfakedPath = "github.com/collectord/collectord/internal/kafkatest/kfaked"

// DefaultTopic is the topic a Cluster holds unless Options say otherwise.
const DefaultTopic = "logs"

// Options say how Start runs the cluster. The zero value means three
// brokers on ports Start chooses, and the topic DefaultTopic with three
// partitions.
type Options struct {
	Brokers    int    // default 3
	Topic      string // default DefaultTopic
	Partitions int    // default 3
	// Ports, one per broker, from FreePorts or the test; default: free
	// ones chosen at the first start.
	Ports []int
}

// Cluster is a kfaked process, or the one it will be again after Restart.
type Cluster struct {
	Brokers []string // HOST:PORT of each broker, the same across restarts
	Topic   string
	Logs    *proctest.Output // kfaked's stderr, across every run

	bin   string
	args  []string // everything but -ports
	ports []int
	proc  *process // nil while not running
}

// process is one run of kfaked.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it exited
	err  error         // its exit status, once done is closed
}

// Start runs kfaked with o, in its own data directory in t.TempDir(), and
// waits until every broker listens. The test's cleanup kills it.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	brokers := o.Brokers
	if brokers == 0 {
		brokers = 3
	}
	partitions := o.Partitions
	if partitions == 0 {
		partitions = 3
	}
	c := &Cluster{Topic: o.Topic, Logs: new(proctest.Output), bin: proctest.Binary(t, kfakedPath)}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	c.args = []string{"-brokers", strconv.Itoa(brokers), "-topic", c.Topic, "-partitions", strconv.Itoa(partitions),
		"-data", t.TempDir(), "-sync"}
	t.Cleanup(func() {
		if c.proc != nil {
			c.proc.cmd.Process.Kill()
			<-c.proc.done
		}
	})
	if o.Ports != nil {
		if len(o.Ports) != brokers {
			t.Fatalf("kafkatest: %d ports for %d brokers", len(o.Ports), brokers)
		}
		c.ports = o.Ports
		c.start(t)
		return c
	}
	// Ports chosen here may be taken by another test before kfaked binds
	// them: choose again a few times.
	var err error
	for range 3 {
		c.ports = FreePorts(t, brokers)
		if err = c.tryStart(t); err == nil {
			return c
		}
	}
	t.Fatal(err)
	return nil
}

// start runs kfaked on c.ports, failing the test if it does not listen.
func (c *Cluster) start(t testing.TB) {
	t.Helper()
	if err := c.tryStart(t); err != nil {
		t.Fatal(err)
	}
}

// tryStart runs kfaked on c.ports and waits for its line naming the
// brokers.
func (c *Cluster) tryStart(t testing.TB) error {
	t.Helper()
	if c.proc != nil {
		t.Fatalf("kafkatest: kfaked %d runs already", c.proc.cmd.Process.Pid)
	}
	ports := make([]string, len(c.ports))
	for i, p := range c.ports {
		ports[i] = strconv.Itoa(p)
	}
	cmd := exec.Command(c.bin, append(c.args, "-ports", strings.Join(ports, ","))...)
	cmd.Stderr = c.Logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	line := make(chan []byte, 1)
	go func() {
		r := bufio.NewReader(stdout)
		l, _ := r.ReadBytes('\n')
		line <- l
		io.Copy(io.Discard, r)
		p.err = cmd.Wait()
		close(p.done)
	}()
	deadline := time.NewTimer(proctest.Timeout)
	defer deadline.Stop()
	var ready struct{ Brokers []string }
	select {
	case l := <-line:
		if json.Unmarshal(l, &ready) == nil && len(ready.Brokers) == len(c.ports) {
			break
		}
		<-p.done
		return fmt.Errorf("kfaked %s did not start (%v):\n%s", strings.Join(cmd.Args[1:], " "), p.err, c.Logs)
	case <-deadline.C:
		cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("kfaked did not listen within %v:\n%s", proctest.Timeout, c.Logs)
	}
	c.proc = p
	c.Brokers = ready.Brokers
	return nil
}

// PID returns the running kfaked's process id.
func (c *Cluster) PID(t testing.TB) int {
	t.Helper()
	return c.running(t).cmd.Process.Pid
}

func (c *Cluster) running(t testing.TB) *process {
	t.Helper()
	if c.proc == nil {
		t.Fatal("kafkatest: the cluster is not running")
	}
	return c.proc
}

func (c *Cluster) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if err := c.running(t).cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to kfaked: %v\n%s", sig, err, c.Logs)
	}
}

// Stop stops the cluster cleanly (SIGTERM; also when frozen) and waits
// for kfaked to exit 0, its state written to its data directory.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	p := c.running(t)
	c.signal(t, syscall.SIGTERM)
	c.signal(t, syscall.SIGCONT) // a frozen kfaked handles SIGTERM once it runs
	c.wait(t, p)
	if p.err != nil {
		t.Fatalf("kfaked exited with %v on SIGTERM:\n%s", p.err, c.Logs)
	}
}

// Kill kills the cluster (SIGKILL) and waits until it is gone. With
// -sync, nothing it acknowledged is lost.
func (c *Cluster) Kill(t testing.TB) {
	t.Helper()
	p := c.running(t)
	c.signal(t, syscall.SIGKILL)
	c.wait(t, p)
}

func (c *Cluster) wait(t testing.TB, p *process) {
	t.Helper()
	select {
	case <-p.done:
		c.proc = nil
	case <-time.After(proctest.Timeout):
		t.Fatalf("kfaked %d did not exit within %v:\n%s", p.cmd.Process.Pid, proctest.Timeout, c.Logs)
	}
}

// Freeze stops the cluster's process (SIGSTOP) and returns once it is
// stopped: its sockets stay open and connections are accepted by the
// kernel, but nothing is answered.
func (c *Cluster) Freeze(t testing.TB) {
	t.Helper()
	c.signal(t, syscall.SIGSTOP)
	c.waitState(t, unix.WSTOPPED)
}

// Thaw lets a frozen cluster run again (SIGCONT), and returns once it
// does.
func (c *Cluster) Thaw(t testing.TB) {
	t.Helper()
	c.signal(t, syscall.SIGCONT)
	c.waitState(t, unix.WCONTINUED)
}

// waitState waits until the kernel reports that kfaked stopped
// (WSTOPPED) or continued (WCONTINUED): a signal takes effect when the
// process is next scheduled, not when kill returns. The exit, if it comes
// instead, is left to the goroutine that waits for it.
func (c *Cluster) waitState(t testing.TB, state int) {
	t.Helper()
	pid := c.running(t).cmd.Process.Pid
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, state, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("waitid kfaked %d: %v\n%s", pid, err, c.Logs)
		}
		return
	}
}

// Restart runs kfaked again, after Stop or Kill, on the same ports with
// the same data directory, and waits until every broker listens.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	c.start(t)
}

// FreePorts returns n loopback TCP ports that nothing listens on now,
// below the kernel's ephemeral port range (see the package doc), or in
// it when there is no room below.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	low := ephemeralLow()
	var ports []int
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if low > 11024 && tries < 1000 {
			addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+rand.IntN(low-10000)))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if tries >= 1000 {
				t.Fatal(err)
			}
			continue
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// ephemeralLow returns the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// Addrs returns the loopback broker addresses of ports, as a client is
// configured with them before the cluster runs.
func Addrs(ports []int) []string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
	}
	return out
}
