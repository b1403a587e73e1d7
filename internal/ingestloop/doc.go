// Package ingestloop is collectord's ingest path on Linux: an Ingester
// reads datagrams from the UNIX datagram socket in batches (internal/dgram:
// recvmmsg with SCM_CREDENTIALS and passed descriptors), parses each with
// pkg/ingest's Parser, stamps it with the sender's kernel credentials and
// the receive time, and appends it to the ring (pkg/shmring).
//
// # Guarantees
//
//   - Single writer: while Run runs, the Ingester is the ring's only
//     writer and the socket's only reader. Run returns only after it has
//     published everything it read; datagrams that arrive later stay
//     queued in the socket for the next reader (the next Ingester, or the
//     next process after an upgrade), so handing over loses none and
//     reorders none.
//   - One commit and one futex wake per batch (Options.BatchSize datagrams
//     at most), never per datagram.
//   - Nothing is lost silently: a datagram that cannot be stored whole is
//     stored truncated and flagged, or, when it cannot be stored at all
//     (empty, rate-limited), counted by reason (Reason*). Passed
//     descriptors are always closed; only journald's sealed memfd is read.
//   - Trusted identity: PID, UID and GID come from SCM_CREDENTIALS
//     (record.FlagCreds), never from the datagram's text.
//   - Bounded memory, and no allocation per datagram in the steady state.
//   - With Options.SyncUrgent, a record of priority crit, alert or emerg
//     is durable before the next datagram is read: after publishing the
//     batch that holds it, Run syncs the ring (only the pages written
//     since the last sync; shmring.Writer.Sync). Other records become
//     durable when the daemon's timer syncs the ring.
//
// # Concurrency and ownership
//
// Run belongs to one goroutine at a time; the Ingester's buffers are its
// own and never handed out. Stats may be called from any goroutine at any
// time. The socket and the ring writer passed to New stay the caller's:
// the Ingester closes neither.
//
// # Rate limiting
//
// Options.RateLimit, off by default, limits each sender to Burst messages
// per Interval, as journald's RateLimitBurst= and RateLimitIntervalSec= do.
// A sender is its kernel uid and pid (SCM_CREDENTIALS), which it cannot
// forge; datagrams without credentials share one sender. A window starts
// with the sender's first message; messages beyond the burst are dropped
// before they are parsed (passed descriptors closed unread) and counted
// as ReasonRateLimited. When a window with drops ends, the Ingester
// writes one record of its own, "Suppressed N messages from pid P (uid
// U)", tag collectord, syslog.warning, with fields SUPPRESSED,
// SUPPRESSED_PID and SUPPRESSED_UID, even if no datagram arrives then: Run
// wakes for it. When Run stops, every drop not yet reported is reported,
// so a restart loses no count. Other senders are not slowed: limiting
// costs a map lookup per datagram and allocates nothing.
//
// At most MaxSenders senders are tracked; when the table is full, senders
// whose window has ended are forgotten, and if none has, new senders share
// one overflow bucket (reported as "senders beyond the rate limiter's
// sender table") until room is made. Memory stays bounded whatever the
// number of senders.
package ingestloop
