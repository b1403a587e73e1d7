// Package origin finds out who sent a datagram: the trusted origin fields
// (record.Origin) of the process whose pid the kernel stamped on it
// (SCM_CREDENTIALS), as journald's _COMM, _EXE, _SYSTEMD_UNIT,
// _SYSTEMD_USER_UNIT, _SYSTEMD_SLICE and _SYSTEMD_CGROUP. They are read
// from /proc/PID/comm, /proc/PID/exe and /proc/PID/cgroup (units from the
// cgroup path: v2, or the v1 name=systemd hierarchy; see CgroupPath and
// Units), and cached per pid.
//
// # Guarantees
//
//   - No reused pid is given the fields of the process that held it
//     before: each cached sender carries its start time (/proc/PID/stat
//     field 22, clock ticks after boot), compared with /proc at most every
//     Options.CheckInterval (10 ms). A changed start time means another
//     process: the fields are read again. A pid no
//     longer in /proc gets nothing, not the cached fields. When reading
//     a new sender, the start time is read before and after its fields,
//     and a change discards them.
//   - Nothing is invented: a field that cannot be read (the sender has
//     exited, exe of a zombie or a kernel thread, a path longer than
//     MaxField) is left empty.
//   - Fields are read again after Options.MaxAge (1 s, like journald), so
//     an exec or a move to another cgroup shows within that time.
//   - Bounded memory: Options.Size senders, 4-way set associative, least
//     recently used evicted; each holds at most 16 + 2 × MaxField bytes.
//   - Cost: a hit allocates nothing and makes no system call, except the
//     start time check, at most once per CheckInterval per sender, which
//     reads /proc/PID/stat (open, read, close) without allocating.
//     Checking per datagram, or per batch (which is one datagram when the
//     loop keeps up), cost a third of the ingest rate. A miss
//     reads four files; it allocates only to grow the slot's buffer.
//
// # Limits
//
// The lookup happens when the datagram is read, not when it was sent. A
// sender that exited and was reaped before that gets no fields; one whose
// pid was meanwhile taken by a new process gets the new process's fields
// (journald has the same limit, systemd#2913: only SCM_PIDFD, Linux 6.5,
// would close it). A pid that is freed and taken again within
// CheckInterval of its last check, which needs the kernel's cyclic pid
// allocation to wrap around meanwhile, is not noticed. comm is
// whatever the process last called itself (prctl PR_SET_NAME,
// /proc/self/comm): trusted to come from the kernel, not to be honest.
//
// # Concurrency and ownership
//
// A Cache belongs to one goroutine (the ingest loop's); it has no locks.
// The slices Lookup returns alias the Cache's memory and are valid only
// until the next Lookup or Begin: copy or encode them before that.
// CgroupPath, Units and StartTime are pure functions, safe anywhere.
package origin
