//go:build linux

package origin

import (
	"errors"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/pkg/record"
)

// Defaults for Options.
const (
	DefaultSize   = 1024        // cached senders
	DefaultMaxAge = time.Second // journald's: fields re-read after 1 s
	// DefaultCheckInterval: a cached sender's start time is checked at
	// most this often.
	DefaultCheckInterval = 10 * time.Millisecond
)

// MaxField is the longest exe or cgroup path stored, PATH_MAX; a longer
// value is left out, never cut.
const MaxField = 4096

// ways is the associativity: a pid may sit in one of this many slots.
const ways = 4

// Options configure a Cache. The zero value means defaults.
type Options struct {
	// Size is how many senders are cached, rounded up to a multiple of 4.
	// Default DefaultSize.
	Size int
	// MaxAge is how long fields read from /proc are used before they are
	// read again (a process may exec another program or move to another
	// cgroup). Default DefaultMaxAge.
	MaxAge time.Duration
	// CheckInterval is how often, at most, a cached sender's start time is
	// compared with /proc (one read of /proc/PID/stat): a pid reused
	// within this time of the last check (the pid space wrapping around
	// meanwhile) would go unnoticed. Default DefaultCheckInterval.
	CheckInterval time.Duration
}

// Stats counts a Cache's lookups. All counts are monotonic.
type Stats struct {
	Hits    uint64 // answered from the cache
	Misses  uint64 // read from /proc: not cached, evicted, or older than MaxAge
	Reused  uint64 // a cached pid found held by another process (start time changed)
	Gone    uint64 // the process had exited and been reaped: nothing could be read
	Evicted uint64 // cached senders dropped to make room
}

// slot is one cached sender.
type slot struct {
	pid     uint32 // 0: empty
	start   uint64 // start time, clock ticks after boot (/proc/PID/stat field 22)
	checked int64  // when start was last checked, Unix nanoseconds
	readAt  int64  // when the fields were read, Unix nanoseconds
	used    uint64 // lookup clock at the last use, for eviction
	buf     []byte // the fields' bytes; origin aliases it
	origin  record.Origin
	present bool // origin holds at least one field
}

// Cache maps sender pids to their origin fields. See the package
// documentation.
type Cache struct {
	slots  []slot
	sets   uint32
	maxAge int64
	check  int64
	now    int64
	clock  uint64
	stats  Stats

	path    []byte // scratch NUL-terminated path
	scratch []byte // scratch file contents
}

// New returns an empty Cache.
func New(opts Options) *Cache {
	if opts.Size <= 0 {
		opts.Size = DefaultSize
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = DefaultCheckInterval
	}
	sets := (opts.Size + ways - 1) / ways
	return &Cache{
		slots:   make([]slot, sets*ways),
		sets:    uint32(sets),
		maxAge:  int64(opts.MaxAge),
		check:   int64(opts.CheckInterval),
		path:    make([]byte, 0, 64),
		scratch: make([]byte, 2*MaxField+1024),
	}
}

// Begin sets the time of the lookups that follow (a batch of datagrams
// read at once): a cached sender is checked against /proc (its start time)
// when it was last checked CheckInterval or more before, and its fields
// read again when they were read MaxAge or more before.
func (c *Cache) Begin(now time.Time) {
	c.now = now.UnixNano()
}

// Stats returns the counts. Like Lookup, it belongs to the Cache's
// goroutine.
func (c *Cache) Stats() Stats { return c.stats }

// Lookup sets *o to the origin fields of the process pid: from the cache
// when pid is cached, was started at the same time as when it was cached
// (checked at most every CheckInterval), and was read less than MaxAge
// ago; otherwise read from /proc/PID now. A
// field that cannot be read is empty; all are when the process is gone.
// The slices in *o alias the Cache and stay valid only until the next
// Lookup or Begin. On a hit it allocates nothing; checking the start time
// reads /proc/PID/stat without allocating either.
func (c *Cache) Lookup(pid uint32, o *record.Origin) {
	*o = record.Origin{}
	if pid == 0 {
		return
	}
	c.clock++
	set := c.slots[c.setOf(pid)*ways:][:ways]
	var s *slot
	for i := range set {
		if set[i].pid == pid {
			s = &set[i]
			break
		}
	}
	if s != nil && c.now-s.checked >= c.check {
		start, err := c.startTime(pid)
		switch {
		case err != nil:
			// Exited and reaped: whoever sent the datagram, /proc no
			// longer says; the cached fields are not given to it.
			c.stats.Gone++
			s.pid = 0
			return
		case start != s.start:
			c.stats.Reused++
			s.pid = 0
			s = nil
		case c.now-s.readAt >= c.maxAge:
			s.pid = 0 // read again below, into the same slot
			s = nil
		default:
			s.checked = c.now
		}
	}
	if s != nil {
		c.stats.Hits++
		s.used = c.clock
		if s.present {
			*o = s.origin
		}
		return
	}
	c.stats.Misses++
	s = c.victim(set)
	if !c.read(pid, s) {
		c.stats.Gone++
		return
	}
	if s.present {
		*o = s.origin
	}
}

// setOf hashes pid to a set (Fibonacci hashing: consecutive pids, as a
// fork-heavy host makes, spread over the sets).
func (c *Cache) setOf(pid uint32) uint32 {
	return uint32((uint64(pid*2654435769) * uint64(c.sets)) >> 32)
}

// victim returns the slot of set to fill: an empty one, else the least
// recently used.
func (c *Cache) victim(set []slot) *slot {
	v := &set[0]
	for i := range set {
		if set[i].pid == 0 {
			return &set[i]
		}
		if set[i].used < v.used {
			v = &set[i]
		}
	}
	c.stats.Evicted++
	v.pid = 0
	return v
}

// read fills s with pid's fields from /proc. It reports false, leaving s
// empty, when the process is gone or its pid changed hands while it was
// read (its start time before and after differ).
func (c *Cache) read(pid uint32, s *slot) bool {
	start, err := c.startTime(pid)
	if err != nil {
		return false
	}
	b := s.buf[:0]
	var comm, exe, cgroup [2]int // offsets in b
	if n, err := c.readFile(pid, "comm"); err == nil && n > 0 && n < len(c.scratch) {
		v := c.scratch[:n]
		if v[n-1] == '\n' {
			v = v[:n-1]
		}
		comm[0] = len(b)
		b = append(b, v...)
		comm[1] = len(b)
	}
	if n, err := c.readlink(pid, "exe"); err == nil && n > 0 && n <= MaxField {
		exe[0] = len(b)
		b = append(b, c.scratch[:n]...)
		exe[1] = len(b)
	}
	if n, err := c.readFile(pid, "cgroup"); err == nil && n < len(c.scratch) {
		if p, ok := CgroupPath(c.scratch[:n]); ok && len(p) <= MaxField {
			cgroup[0] = len(b)
			b = append(b, p...)
			cgroup[1] = len(b)
		}
	}
	if again, err := c.startTime(pid); err != nil || again != start {
		s.buf = b[:0]
		return false
	}
	s.buf = b
	o := &s.origin
	*o = record.Origin{
		Comm:   sub(b, comm),
		Exe:    sub(b, exe),
		Cgroup: sub(b, cgroup),
	}
	o.Unit, o.UserUnit, o.Slice = Units(o.Cgroup)
	s.pid, s.start, s.checked, s.readAt, s.used = pid, start, c.now, c.now, c.clock
	s.present = !o.IsZero()
	return true
}

// sub returns b[r[0]:r[1]], or nil when empty.
func sub(b []byte, r [2]int) []byte {
	if r[0] == r[1] {
		return nil
	}
	return b[r[0]:r[1]:r[1]]
}

// atFDCWD is AT_FDCWD (-100) as a system call argument: its two's
// complement.
const atFDCWD = ^uintptr(-unix.AT_FDCWD - 1)

// errFormat: /proc/PID/stat without a start time.
var errFormat = errors.New("no start time in /proc/PID/stat")

// startTime reads pid's start time from /proc/PID/stat.
func (c *Cache) startTime(pid uint32) (uint64, error) {
	n, err := c.readFile(pid, "stat")
	if err != nil {
		return 0, err
	}
	start, ok := StartTime(c.scratch[:n])
	if !ok {
		return 0, errFormat
	}
	return start, nil
}

// procPath sets c.path to "/proc/PID/NAME\x00" and returns a pointer to it.
func (c *Cache) procPath(pid uint32, name string) *byte {
	b := append(c.path[:0], "/proc/"...)
	b = strconv.AppendUint(b, uint64(pid), 10)
	b = append(b, '/')
	b = append(b, name...)
	c.path = append(b, 0)
	return &c.path[0]
}

// readFile reads /proc/PID/NAME into c.scratch and returns its length. It
// does not allocate: the path is passed to openat(2) from c.path (the
// syscall package's Open would copy it to a new NUL-terminated string).
func (c *Cache) readFile(pid uint32, name string) (int, error) {
	p := c.procPath(pid, name)
	r, _, errno := unix.Syscall6(unix.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(p)),
		uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	runtime.KeepAlive(c.path)
	if errno != 0 {
		return 0, errno
	}
	fd := int(r)
	defer unix.Close(fd)
	n := 0
	for n < len(c.scratch) {
		m, err := unix.Read(fd, c.scratch[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

// readlink reads the target of /proc/PID/NAME into c.scratch and returns
// its length; without allocating, like readFile.
func (c *Cache) readlink(pid uint32, name string) (int, error) {
	p := c.procPath(pid, name)
	r, _, errno := unix.Syscall6(unix.SYS_READLINKAT, atFDCWD, uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&c.scratch[0])), uintptr(len(c.scratch)), 0, 0)
	runtime.KeepAlive(c.path)
	runtime.KeepAlive(c.scratch)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
