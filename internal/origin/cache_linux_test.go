package origin

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/record"
)

func TestMain(m *testing.M) {
	proctest.Main(m, map[string]func([]string) error{"hold": hold})
}

// hold is a child: it names itself args[0] (/proc/self/comm), says
// "ready", and waits until its stdin is closed.
func hold(args []string) error {
	if err := os.WriteFile("/proc/self/comm", []byte(args[0]), 0); err != nil {
		return err
	}
	os.Stdout.WriteString("ready\n")
	_, err := io.Copy(io.Discard, os.Stdin)
	return err
}

// holder is a hold child (holdChild): it runs, named, until released.
type holder struct{ *proctest.Held }

// startHolder runs a hold child named comm, in cg unless it is nil, and
// returns once it has named itself. It is stopped when the test ends.
func startHolder(t *testing.T, comm string, cg *proctest.Cgroup) holder {
	t.Helper()
	h := holder{proctest.StartHeld(t, proctest.ChildCommand(context.Background(), "hold", comm))}
	if cg != nil {
		cg.Add(t, h.Pid())
	}
	h.Expect(t, "ready")
	return h
}

func (h holder) pid() uint32 { return uint32(h.Pid()) }

// lookup looks pid up at 2 check intervals after the cache's last
// lookup, so that the start time is checked, but well within MaxAge.
func lookup(c *Cache, pid uint32) record.Origin {
	var o record.Origin
	if c.now == 0 {
		c.now = time.Now().UnixNano()
	}
	c.Begin(time.Unix(0, c.now+2*c.check))
	c.Lookup(pid, &o)
	return o
}

func testExe(t *testing.T) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	exe, err = filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// A real process moved into system.slice/demo.service gets its unit, its
// comm and its exe; cgroup v2 and, where mounted, v1 name=systemd.
func TestLookupUnit(t *testing.T) {
	for _, v1 := range []bool{false, true} {
		t.Run(map[bool]string{false: "cgroup2", true: "v1 name=systemd"}[v1], func(t *testing.T) {
			cg := proctest.NewCgroup(t, "system.slice/demo.service", v1)
			h := startHolder(t, "demo", cg)
			o := lookup(New(Options{}), h.pid())
			want := record.Origin{Comm: []byte("demo"), Exe: []byte(testExe(t)), Unit: []byte("demo.service"),
				Slice: []byte("system.slice"), Cgroup: []byte(cg.Path)}
			if !o.Equal(&want) {
				t.Errorf("Lookup = %s\nwant     %s", show(&o), show(&want))
			}
		})
	}
}

func show(o *record.Origin) string {
	return "comm=" + strconv.Quote(string(o.Comm)) + " exe=" + strconv.Quote(string(o.Exe)) +
		" unit=" + strconv.Quote(string(o.Unit)) + " user_unit=" + strconv.Quote(string(o.UserUnit)) +
		" slice=" + strconv.Quote(string(o.Slice)) + " cgroup=" + strconv.Quote(string(o.Cgroup))
}

// A sender that has exited: while it is a zombie its comm and cgroup can
// still be read (it is still the process with that pid) and its exe
// cannot; once reaped, nothing is given, not even what the cache held.
func TestLookupExitedSender(t *testing.T) {
	c := New(Options{})
	h := startHolder(t, "exiting", nil)
	pid := h.pid()
	if o := lookup(c, pid); string(o.Comm) != "exiting" {
		t.Fatalf("live: comm %q, want exiting", o.Comm)
	}
	// Exit without being reaped: stdin closed, then wait for the exit
	// without reaping (WNOWAIT).
	h.CloseStdin()
	var info waitInfo
	if err := waitNoReap(int(pid), &info); err != nil {
		t.Fatal(err)
	}
	fresh := New(Options{})
	if o := lookup(fresh, pid); string(o.Comm) != "exiting" || len(o.Exe) != 0 {
		t.Errorf("zombie, not cached: %s; want comm exiting, no exe", show(&o))
	}
	if o := lookup(c, pid); string(o.Comm) != "exiting" {
		t.Errorf("zombie, cached: %s; want comm exiting", show(&o))
	}
	h.Release(t) // reaped: the pid is free
	for _, cache := range []*Cache{c, fresh} {
		o := lookup(cache, pid)
		if string(o.Comm) == "exiting" {
			t.Errorf("reaped: %s; the exited process's fields were given out", show(&o))
		}
	}
	if s := c.Stats(); s.Gone == 0 {
		t.Errorf("Stats %+v: want Gone > 0", s)
	}
}

// Pid reuse, for real: after a process exits, another one is started on
// the same pid (as root, by setting /proc/sys/kernel/ns_last_pid to the
// pid before it and forking; retried when another fork takes the pid
// first). The cache checks the start time and reads the new process's
// fields instead of handing out the old one's.
func TestLookupPidReuse(t *testing.T) {
	cg := proctest.NewCgroup(t, "system.slice/old.service", false)
	c := New(Options{})
	old := startHolder(t, "old-owner", cg)
	pid := old.pid()
	if o := lookup(c, pid); string(o.Comm) != "old-owner" || string(o.Unit) != "old.service" {
		t.Fatalf("first owner: %s", show(&o))
	}
	old.Release(t)
	h, err := startOnPid(t, int(pid), "new-owner")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot start a process on pid %d: %v", pid, err)
		}
		t.Skipf("cannot start a process on pid %d: %v", pid, err)
	}
	o := lookup(c, h.pid())
	if string(o.Comm) != "new-owner" || len(o.Unit) != 0 {
		t.Errorf("pid %d reused: %s; want comm new-owner and no unit", pid, show(&o))
	}
	if s := c.Stats(); s.Reused != 1 {
		t.Errorf("Stats %+v: want Reused 1", s)
	}
}

// startOnPid starts a hold child named comm on pid, which must be free.
func startOnPid(t *testing.T, pid int, comm string) (holder, error) {
	const tries = 50
	for range tries {
		if err := os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid-1)), 0); err != nil {
			return holder{}, err
		}
		h := startHolder(t, comm, nil)
		if int(h.pid()) == pid {
			return h, nil
		}
		h.Release(t)
	}
	return holder{}, errors.New("another process took the pid each time")
}

// A cached sender costs nothing: no allocation and no system call within
// the check interval; the start time check after it reads /proc/PID/stat
// without allocating.
func TestLookupAllocs(t *testing.T) {
	c := New(Options{MaxAge: time.Hour})
	pid := uint32(os.Getpid())
	var o record.Origin
	c.Begin(time.Now())
	c.Lookup(pid, &o)
	if len(o.Comm) == 0 || len(o.Exe) == 0 {
		t.Fatalf("own process: %s", show(&o))
	}
	if n := testing.AllocsPerRun(1000, func() { c.Lookup(pid, &o) }); n != 0 {
		t.Errorf("hit within the check interval: %v allocations, want 0", n)
	}
	now := time.Now()
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(DefaultCheckInterval)
		c.Begin(now)
		c.Lookup(pid, &o)
	}); n != 0 {
		t.Errorf("hit with the start time checked: %v allocations, want 0", n)
	}
	if s := c.Stats(); s.Misses != 1 {
		t.Errorf("Stats %+v: want 1 miss", s)
	}
}

// The cache holds at most Size senders: more evict the least recently
// used, which are then read again, correctly.
func TestLookupBounded(t *testing.T) {
	c := New(Options{Size: 4})
	var hs []holder
	for i := range 6 {
		hs = append(hs, startHolder(t, "h"+strconv.Itoa(i), nil))
	}
	for round := range 2 {
		for i, h := range hs {
			if o := lookup(c, h.pid()); string(o.Comm) != "h"+strconv.Itoa(i) {
				t.Fatalf("round %d: holder %d: comm %q", round, i, o.Comm)
			}
		}
	}
	if len(c.slots) != 4 {
		t.Errorf("%d slots, want 4", len(c.slots))
	}
	if s := c.Stats(); s.Evicted == 0 || s.Misses < 7 {
		t.Errorf("Stats %+v: want evictions and misses after them", s)
	}
}

// Fields are read again after MaxAge: a process moved to another unit
// shows the new one once the old fields have aged out.
func TestLookupMaxAge(t *testing.T) {
	a := proctest.NewCgroup(t, "system.slice/a.service", false)
	b := proctest.NewCgroup(t, "system.slice/b.service", false)
	c := New(Options{MaxAge: time.Hour})
	h := startHolder(t, "mover", a)
	t0 := time.Now()
	var o record.Origin
	c.Begin(t0)
	c.Lookup(h.pid(), &o)
	if string(o.Unit) != "a.service" {
		t.Fatalf("in a.service: %s", show(&o))
	}
	b.Add(t, int(h.pid()))
	c.Begin(t0.Add(time.Minute))
	c.Lookup(h.pid(), &o)
	if string(o.Unit) != "a.service" {
		t.Errorf("within MaxAge: unit %q, want the cached a.service", o.Unit)
	}
	c.Begin(t0.Add(time.Hour))
	c.Lookup(h.pid(), &o)
	if string(o.Unit) != "b.service" || string(o.Cgroup) != b.Path {
		t.Errorf("after MaxAge: %s; want unit b.service, cgroup %s", show(&o), b.Path)
	}
}
