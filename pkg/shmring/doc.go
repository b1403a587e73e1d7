// Package shmring is collectord's record store: a file-backed ring of
// variable-length records, mapped into memory, with one writer and any
// number of readers in any process, woken through a futex in the mapping.
//
// # Guarantees
//
//   - One writer per ring file, across processes: OpenWriter takes an
//     exclusive flock(2) and fails with ErrLocked while another process
//     holds it. The lock is released when the writer is closed (unmapped)
//     or its process dies.
//   - The writer never waits for readers. When the ring is full the oldest
//     records are overwritten; a reader that falls behind is told exactly how
//     many records it lost and continues from the oldest live record.
//   - Sequence numbers are 64-bit, start at FirstSeq, never repeat and
//     continue across writer restarts; a cursor is just a sequence number.
//   - Crash consistency: a record is committed when its descriptor's
//     sequence number is stored, and published (visible to readers) when the
//     header's head is stored. After a crash of the writer's process at any
//     point, OpenWriter recovers every committed record, nothing
//     half-written becomes visible, and numbering continues. Opening an
//     existing ring never erases it. After a crash the live range is
//     rebuilt from the records on open; after a clean Close it is not, so a
//     new writer takes over in microseconds.
//   - Durability (Options.Durable, for a ring on a disk): after a power cut
//     or a kernel crash, every record that a completed Sync covered is
//     intact, no torn record is visible, and numbering continues after the
//     newest intact record. See "Durability on disk" below.
//   - Damage (a flipped bit, a torn file) is detected by checksums and
//     bounds checks: a damaged record is skipped and counted as lost, damaged
//     live counters are rebuilt from the descriptors, and a file whose
//     header is damaged is refused with ErrBadFile. Nothing in a ring file
//     can make this package panic, hang or read outside the mapping.
//
// # Layout (version 1, little-endian)
//
//	offset           size  field
//	0                8     magic "CLDRING\0"
//	8                4     layout version (1)
//	12               4     header size (4096)
//	16               8     data area size D (power of two, 64 KiB .. 1 TiB)
//	24               8     descriptor count K (power of two)
//	32               8     descriptor table offset (4096)
//	40               8     data area offset (page aligned, after the table)
//	48               8     creation time, Unix nanoseconds
//	56               4     CRC32C of bytes 0..55
//	128              8     head: next sequence number; all below are published
//	136              8     head position: logical byte position of the next record
//	192              8     tail: oldest live sequence number
//	200              8     tail position: logical position of the oldest live record
//	256              4     futex word, incremented after every publish
//	320              4     pid of the current writer, 0 after a clean Close
//	328              8     time of the last clean Close, Unix nanoseconds
//	4096             16*K  descriptors: {seq uint64, pos uint64}, slot seq & (K-1)
//	data offset      D     records
//
// A record starts at a logical byte position (free-running, masked with D-1
// to find its offset), is 8-byte aligned and never split across the end of
// the data area: when it does not fit, the writer marks the rest of the lap
// as padding (len 0xffffffff) and starts the record at offset 0.
//
//	0   4  CRC32C of bytes 4 .. 24+len
//	4   4  payload length len
//	8   8  sequence number
//	16  8  timestamp, Unix nanoseconds (the writer's receive time)
//	24  len payload, then zero to 7 bytes of alignment
//
// The geometry is fixed at creation. Opening a ring with a different
// Options.Size fails with ErrGeometry naming both sizes: to resize, remove
// the file (losing its records) and let the writer create a new one.
//
// # Publish protocol (writer)
//
// For each added record: if its descriptor slot or its bytes are still
// held by old records, advance the tail past them and store tail position
// then tail sequence ("tail intent") before touching anything; write the
// record and its CRC; store the descriptor's position, then its sequence
// number (the commit). Publish stores the head position, then the head
// sequence number, increments the futex word and issues one FUTEX_WAKE for
// the whole batch. Add does not publish, so a batch of records costs one
// wake, and Add allocates nothing.
//
// # Durability on disk
//
// The writer changes the file through a shared mapping; the kernel writes
// the changed pages back when it likes, in any order, and a power cut can
// leave any mix of older and newer contents of the pages written since the
// last sync (and, for a page being written, of its sectors). The publish
// protocol's order therefore says nothing about what is on the disk; what
// does:
//
//   - Writer.Sync writes, with msync(MS_SYNC), only the pages written
//     since the last Sync, in three steps: the records, then their
//     descriptors, then the header. Each step is a datasync that flushes
//     the disk's cache, so nothing durable ever points at what is not.
//   - A Durable OpenWriter first records durably that the ring is open
//     (the writer's pid in the header), so that any later crash is seen as
//     one, and makes what it recovered durable (fdatasync) before
//     returning. Release syncs, then records the clean close durably. The
//     file's name is made durable when the ring is created.
//   - After anything but a clean close, OpenWriter trusts no counter: the
//     newest intact record (descriptor naming it, its own sequence number
//     and CRC32C matching) becomes the last one; going back from it every
//     intact record is kept, down to the header's tail and at most one
//     descriptor table back, until one is found that the ring overwrote
//     since. Sequence numbers in that range whose record is torn stay as
//     holes, which readers count as damaged (lost). Nothing a completed
//     Sync covered is torn, so all of it is kept. Records past the newest
//     intact one are dropped and their sequence numbers given again: a
//     reader that saw one of them before the power cut sees another
//     record under that number after it.
//
// The pkg/shmring tests simulate power cuts by building the files a cut
// can leave, page by page, from the contents a real writer's file had at
// each sync point and after it (TestPowerCut, FuzzPowerCut).
//
// # Validate protocol (reader)
//
// To read sequence number s with oldest <= s < head: check the descriptor
// names s; copy the record out of the mapping; then check that the
// descriptor still names s, that the tail sequence has not passed s and the
// tail position has not passed the record; finally check the record's own
// sequence number and CRC32C. A record whose space the writer has claimed is
// reported lost; one that fails only the checksum is reported damaged (and
// lost). Go has no acquire/release fences for plain memory, so the CRC over
// sequence number and payload is what proves a copy is not torn.
//
// # Waiting
//
// Reader.Wait sleeps in FUTEX_WAIT (without FUTEX_PRIVATE_FLAG, so it works
// across processes on the shared file mapping, read-only mappings included)
// until the futex word changes. Within a process at most one goroutine per
// Reader sleeps in the kernel; it wakes the others through a channel.
// Never replace or rename a ring file while readers map it: futex keys are
// the file's inode and offset.
//
// Reader.WaitPaced is Wait for followers that read everything published
// each time they wake: every follower of one Reader wakes in the same
// tick, at once on a quiet ring, at most once per PaceGap on a busy one,
// from one timer, and while the ring is busy nobody sleeps on the futex.
//
// # Ownership and concurrency
//
// A Writer is used by one goroutine, except Sync and SyncStats, which any
// goroutine may call at any time (the daemon syncs on a timer). A Reader
// is safe for concurrent use; each goroutine reads with its own Cursor.
// Records returned by Cursor.Next are copies in a buffer owned by the
// cursor, valid until the next call; the mapping itself is never handed
// out.
//
// # Limits
//
// A payload may be at most an eighth of the data area (Writer.MaxPayload).
// The descriptor count bounds how many records the ring holds at once
// (default one per 128 data bytes). Readers trust the file's size as it was
// when they opened it: truncating a mapped ring file (which needs write
// permission on it) makes readers fault.
package shmring
