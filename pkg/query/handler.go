package query

import "time"

// DefaultPingInterval is how long a follow may stay quiet before a
// keep-alive: the server's P frame, Run's call to Handler.Ping.
const DefaultPingInterval = 15 * time.Second

// Handler receives the response to a query, from Run (reading a ring
// directly) or from Client.Query (over TCP): the same request gives the same
// calls either way, except for where batches end. Nil functions are
// skipped. The functions are called from one goroutine, one at a time.
//
// A function that returns an error stops the query: Run and Client.Query
// return that error (Client.Query after telling the server to stop).
type Handler struct {
	// Record receives each matching record, in strictly increasing Seq
	// order. rec.Payload is valid only during the call.
	Record func(rec Record) error
	// Lost reports that lost records were overwritten (or damaged) before
	// they could be read; the response continues with sequence number
	// next. Records before next that were neither delivered nor lost did
	// not match the filter. lost is 0 for a query over one user's records
	// (OwnRecords), whose count would include other users' records.
	Lost func(lost, next uint64) error
	// Flush marks the end of a burst: Run calls it when a follow has
	// delivered every record published so far and is about to wait for
	// more, Client.Query after each batch. Output buffered by Record
	// belongs on its way out now. Neither calls it before returning: the
	// response is complete then, and the caller flushes.
	Flush func() error
	// Ping reports a quiet follow: Run calls it after PingInterval without
	// a record, Client.Query on each P frame from the server.
	Ping func() error
	// PingInterval is how quiet a follow must be before Run calls Ping.
	// Zero means DefaultPingInterval. Client.Query ignores it: the server
	// decides.
	PingInterval time.Duration
	// Hello, when not nil, gets the server's hello reply before any other
	// call, when Client.Query is the one to read it (a client dialled
	// with DialOptions.Pipeline, on its first request). Run ignores it.
	Hello func(HelloReply) error

	// overwritten, if not nil, gets the true count of every loss before
	// Lost reports it (for OwnRecords, without the count): the Server's
	// metrics count what the writer overtook.
	overwritten func(lost uint64)
}

func (h *Handler) record(r Record) error {
	if h.Record == nil {
		return nil
	}
	return h.Record(r)
}

func (h *Handler) lost(lost, next uint64) error {
	if h.Lost == nil {
		return nil
	}
	return h.Lost(lost, next)
}

func (h *Handler) flush() error {
	if h.Flush == nil {
		return nil
	}
	return h.Flush()
}

func (h *Handler) ping() error {
	if h.Ping == nil {
		return nil
	}
	return h.Ping()
}
