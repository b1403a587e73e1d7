// Package flood holds connections to a server that never finish their
// handshake: the load of someone who wants to keep real clients out by
// taking every slot a server has for connections that have not said who
// they are (OpenSSH's MaxStartups problem, slowloris). Tests and
// benchmarks use it against collectord's TCP query port.
//
// Start opens Options.Conns connections; half of them send nothing, the
// other half the first two bytes of a frame header and nothing more. When
// the server closes one, it is counted and, after Options.Reconnect,
// opened again, as an attacker would, so that the server stays under the
// same pressure for as long as the flood is held.
//
// Guarantees: Close stops every goroutine Start started and closes every
// connection before it returns. Concurrency: Replaced and WaitReplaced may
// be called from any goroutine. Limits: TCP only; each connection costs
// the caller a descriptor (raise RLIMIT_NOFILE for thousands) and a
// goroutine.
package flood
