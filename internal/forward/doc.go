// Package forward sends a ring's records to a Kafka topic, losing none:
// the cold path, beside the hot path of ingest and queries.
//
// # Shape
//
// Run reads the ring like any other reader, through a read-only mapping
// and a cursor, and produces each record with franz-go's client
// (idempotent, acks=all, batched with a linger, compressed). collectord
// runs it in a process of its own (`collectord forward`, started and
// stopped by the daemon; see Supervisor): that process needs only read
// access to the ring, alone reads the cluster's credentials, and its
// memory, garbage collector and CPU never share the ingest loop's.
//
// # Delivery: at least once, duplicates bounded
//
// A record is done when the brokers acknowledge it. The cursor file
// (beside the ring by default, written to a temporary file, synced,
// renamed, and the directory synced) holds the last sequence number with
// every record up to it done; it is written each time that position
// moves, at most every 250 ms, and before reading on once MaxBuffered
// records were read past it. A new Run, after a crash, a SIGKILL, an
// upgrade or an outage, resumes right after it: no record is skipped, and
// the only records sent twice are those sent but not yet recorded as done
// (at most MaxBuffered). A lock beside the cursor file keeps one Run at a
// time: during an upgrade the new one waits for the old one to flush and
// let go. Every record carries headers seq, ring_id and host, so a
// consumer drops duplicates by (ring_id, seq).
//
// When the ring overwrites records that were never acknowledged (the
// cluster was down for long), Run counts exactly how many (Stats.Lost),
// logs each gap once, and goes on with the oldest record left. Records
// the brokers acknowledged to a client that was reset since are neither
// sent again nor counted lost. (One sent whose acknowledgement never
// came may be on the topic all the same: it counts as lost.) Records the
// brokers refuse for good (larger than their limit) are counted as
// Dropped and logged; nothing is lost silently.
//
// # Sharing the CPU
//
// The cold path must not slow the hot one. While the forwarder is less
// than YieldLag behind (the age of the oldest record not acknowledged) it
// runs under SCHED_IDLE, on CPU that ingest and queries leave, and during
// a burst (records arriving faster than 20,000/s, judged per tick) it
// sends nothing and waits for the burst to pass: a burst is taken in at
// full speed and forwarded a moment later. Once it falls YieldLag behind
// it runs at nice Nice under the normal policy and forwards whatever the
// rate, until it is back under half of YieldLag. A zero YieldLag never
// yields.
//
// # The cluster failing
//
// Ingest never waits for Kafka: the forwarder only reads the ring. The
// client retries records for as long as it lives. Once per 250 ms tick
// the forwarder judges the cluster: acknowledgements are a success; a
// tick in which records wait and a broker could not be reached or a
// record failed, or in which records have waited longer than
// StallTimeout, is a failure; a quiet tick is neither. After
// BreakerThreshold failures without a success between them the circuit
// breaker opens (the client's own reconnection backoff spaces its
// failures out: a cluster that dies under load opens the breaker after
// about ten seconds): the
// client is closed (what it held is sent again later) and nothing is
// tried for BreakerMin, doubling up to BreakerMax each time, with jitter;
// then one metadata request probes the cluster (half-open). A cluster
// that is down at start is the same: Run starts, and probes.
//
// # Concurrency and ownership
//
// Run belongs to the goroutine that calls it and returns once everything
// it started has stopped. Options.Report runs on that goroutine with a
// Stats the callee owns. The Kafka client's promise goroutine and hooks
// touch only the tracker and counters, which are safe for concurrent use.
package forward
