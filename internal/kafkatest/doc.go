// Package kafkatest gives tests of the Kafka forwarder a cluster and a
// consumer that are not collectord's: kfaked (franz-go's kfake, a real
// implementation of the Kafka wire protocol, as a process of its own)
// and kcat (librdkafka's command-line client). Only tests import it.
//
// What it provides:
//
//   - Start runs kfaked with three brokers (by default) holding one topic,
//     its own data directory in t.TempDir(), and -sync: every batch is on
//     disk before it is acknowledged. The ports are fixed after the first
//     start, so that a Cluster stopped (Stop, SIGTERM) or killed (Kill,
//     SIGKILL) starts again with Restart on the same ports with the same
//     data: a client's seed brokers stay valid, and nothing acknowledged
//     is lost. Freeze (SIGSTOP) and Thaw (SIGCONT) make it hang with its
//     connections open, as an overloaded or partitioned cluster does.
//   - FreePorts picks ports for a cluster that starts later: a client can
//     be configured with brokers that do not exist yet.
//   - Consume reads the topic from the beginning with kcat and returns
//     every message, duplicates included, with its seq, ring_id and host
//     headers parsed; Dedupe keeps the first of each seq.
//
// Guarantees: every kfaked a Cluster runs is killed by the test's
// cleanup (also a frozen one), and every kcat is killed before Consume
// returns. Waits are woken by what they wait for (a line on a pipe, a
// process's exit, kcat's long-polling fetch); their timeouts, a minute
// (proctest.Timeout), are failure deadlines, never delays.
//
// Ports: FreePorts, and Start unless told the ports, choose them below
// the kernel's ephemeral range (net.ipv4.ip_local_port_range). A client
// retrying a broker that is down makes connections whose local ports come
// from that range; one of them could otherwise take a broker's port while
// the cluster is down (or connect to itself on it), and the restart
// would fail.
//
// Concurrency: a Cluster's methods belong to the test's goroutine, except
// Consume, which may run from any goroutine while the cluster runs.
//
// Limits: Linux only in practice (signals, /proc). The package's TestMain
// must call proctest.Main, which builds kfaked and removes it after the
// tests. Without kcat the tests that consume are skipped, except in CI
// (see proctest.NeedTool).
package kafkatest
