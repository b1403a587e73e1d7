// Package fault injects failures into collectord for tests that must see
// the daemon misbehave: an ingest loop that wedges, a takeover that is
// slow. It is compiled in only with the faultinject build tag, which the
// tests that need it build the daemon with; in every other build its
// functions are empty and inlined away, so the hooks cost nothing.
//
// Under faultinject the hooks are set from the environment, read once:
//
//   - A datagram whose message is WedgeMessage wedges the ingest loop
//     that stores it: the loop blocks forever, as a bug would.
//   - COLLECTORD_FAULT_STALL_LIMIT (a Go duration) replaces how long the
//     ingest loop may spend on one batch before it counts as stalled.
//   - COLLECTORD_FAULT_TAKEOVER_DELAY (a Go duration) makes a new process
//     wait that long after the previous one released the ring before it
//     takes it over.
//   - COLLECTORD_FAULT_FLUSH_KILL (a number N) kills the daemon with
//     SIGKILL once it has copied N records of a volatile ring into the
//     persistent one at start, as a crash in the middle of that would.
//
// Never ship a binary built with faultinject.
//
// The hooks are safe for concurrent use; their settings are read once at
// start and never change.
package fault

// WedgeMessage is the message that wedges the ingest loop under the
// faultinject build tag.
const WedgeMessage = "collectord fault: wedge the ingest loop"
