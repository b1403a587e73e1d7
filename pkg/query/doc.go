// Package query answers questions about a collectord ring: the latest N
// records, the records after a cursor, and a live follow, each filtered.
// These are the three kinds of query (Kind, KindOf: latest, after and
// follow); the server counts queries by kind (ServerStats), and spans and
// metrics name it with Kind.String. The package holds the three pieces
// that must agree on what a query means:
//
//   - Run (and RunAs, for a reader limited to its own records), the
//     engine: it reads a shmring.Reader directly. The Server runs it for
//     each query, and logctl tail --ring runs it on a ring file it maps
//     itself, so both produce the same records.
//   - Server, which serves a ring with protocol version 1
//     (docs/PROTOCOL.md) over TCP and over UNIX stream sockets, and Client
//     (Dial, Query), which speaks it.
//   - The protocol codec (FrameReader, AppendFrame, ParseBatch,
//     AppendLost, ParseLost, the JSON messages), exported so that other Go
//     programs can talk to collectord without the Client.
//
// # Guarantees
//
//   - Ordering: a response delivers records in strictly increasing
//     sequence order, within and across batches.
//   - Exactly once with cursors: every response ends with an End whose
//     Cursor is the last sequence number examined. A query with After set
//     to that cursor continues exactly where the previous response stopped,
//     whether it was done, cancelled, or ended by a server shutdown: no
//     record is delivered twice and none is skipped silently.
//   - Loss is reported, never hidden: when the writer overwrote (or
//     damage destroyed) records a query had not read yet, the response says
//     how many (an L frame, Handler.Lost) and where it continues, so that
//     records delivered plus records lost account for every sequence number
//     that matched. Gaps without a loss report are records the filter
//     rejected.
//   - Bounded memory: a query holds one record at a time and Run does not
//     allocate per record. A "latest N" query scans the ring backwards to
//     find where its N records start instead of buffering them. A server
//     connection holds a batch buffer of about 64 KiB (a larger record
//     grows it, to at most 256 KiB once that record is sent), a 16 KiB
//     write buffer (from its first reply on), a frame of at most 64 KiB from the client, and a copy
//     of the largest record its cursor has read.
//   - Isolation: the ring's writer never waits for readers. A client that
//     reads slowly blocks only its own connection (for at most the write
//     timeout per frame), falls behind in the ring, and is told what it
//     lost; other clients and ingest are unaffected.
//   - Cheap follows: follows of a busy ring wake together, at most once a
//     millisecond (shmring.Reader.WaitPaced), and a follow limited to one
//     user's records sleeps until that user's records arrive when the
//     server runs in the process writing the ring (Options.Arrivals), so
//     that a user at the per-user cap costs ingest nothing while others
//     write.
//   - Shutdown: Server.Shutdown ends every running query (follows
//     included) after its current batch with E shutdown and a cursor to
//     resume from, and waits for every goroutine the server started.
//
// # Access control
//
// Every connection is granted an Access by its handshake, before anything
// about the ring is sent; its queries run with it (RunAs).
//
//   - On a UNIX socket the kernel says who connected (SO_PEERCRED and
//     SO_PEERGROUPS, as of the connect): root, Options.ReaderUIDs and the
//     members of Options.ReaderGroups read every record, like the ring
//     file's readers; anyone else reads only the records its own
//     processes sent (OwnRecords), as journald shows a user their own
//     journal. A valid token (below) grants every record there too.
//   - On the network a client is anonymous unless it proves itself: with
//     a client certificate the TLS handshake verified (Options.TLSConfig
//     with ClientAuth set to tls.RequireAndVerifyClientCert: mutual TLS),
//     or with one of Options.Tokens in its hello (DialOptions.Token),
//     which the server then requires of every network client. A client
//     that proves itself reads every record; an anonymous one is refused
//     with X unauthorized unless Options.AnonymousAll.
//
// The TLS handshake runs right after the accept, under the same
// HandshakeTimeout deadline as the hello. A client refused in the TLS
// handshake receives no frame; one refused for its token, or for being
// anonymous, receives X unauthorized alone (errors.Is(err,
// ErrUnauthorized) on the client side). Tokens are compared by their
// SHA-256 digests in constant time and never logged. Refusals are counted
// in ServerStats.AuthFailuresTLS, AuthFailuresToken and
// AuthFailuresAnonymous. (collectord and logctl load certificates and
// tokens from files with internal/access.)
//
// # Fair shares
//
// Connections in their handshake (TLS and hello) and connections past it
// are counted apart, so that clients that never say hello cannot keep out
// one that does:
//
//   - at most Options.MaxHandshakes network connections are in their
//     handshake; accepting one more closes the oldest of them
//     (ServerStats.HandshakesDropped);
//   - at most Options.MaxConns connections are past their hello, on all
//     listeners: the next hello is answered X busy;
//   - one uid holds at most Options.MaxConnsPerUID connections on UNIX
//     sockets, in their handshake or past it: the next is answered X busy
//     at once (ServerStats.ConnsRejectedUID).
//
// # Ownership and concurrency
//
// A Handler's functions are called from one goroutine; the Record they get
// aliases a buffer owned by the caller (the ring cursor, the batch being
// decoded) and is valid only during the call. A compiled Filter may be
// shared read-only.
//
// A Server is safe for concurrent use: Serve may run on several listeners
// at once, and Stats and Shutdown may be called from any goroutine. Stats
// returns a copy, taken without a lock or an allocation: each counter is
// read atomically, not all of them at one instant. Each connection is
// served by two goroutines the Server owns, one reading the client's
// frames and one answering its queries; Shutdown waits for both.
//
// A Client is safe for concurrent use and runs one query at a time:
// concurrent Query calls wait for each other, and Close may be called at
// any time. The values Query and the Decode functions return are the
// caller's and alias nothing.
//
// A FrameReader belongs to one goroutine; the body Next returns aliases
// its buffer and is valid until the next call. A Batch's records alias the
// body given to ParseBatch. AppendFrame and AppendLost append to the
// caller's slice and keep nothing.
//
// # Limits
//
// A client frame is at most 64 KiB (MaxClientFrame), a server frame at most
// 16 MiB (MaxServerFrame): a record whose payload does not fit in one
// server frame is reported as lost. Any n is accepted: n larger than the
// ring holds returns what it holds, so that one query's work is bounded
// by the ring's size, and it is streamed in batches of about 64 KiB. With
// a filter (or OwnRecords), the records of a "latest N" query are
// examined twice, once backwards to find where they start and once
// forwards to send them.
//
// # Tracing
//
// Options.TracerProvider and DialOptions.TracerProvider (OpenTelemetry;
// nil or a noop provider: off) make one trace cover a query on both ends,
// carried by the W3C traceparent of the request (docs/PROTOCOL.md):
//
//   - Client.Query is a client span named "<client> query" ("logctl
//     query"), a child of the span in its context, and sends the span's
//     traceparent with the request. tracestate is not carried: the
//     protocol has no place for it.
//   - The Server makes each Q frame a server span named "collectord query",
//     a child of the request's traceparent or, failing that, the hello's.
//     It ends when the response's last frame is written: for a follow,
//     when the follow ends.
//
// Spans carry collectord.query.kind (the request's Kind: latest, after or
// follow), .id, .n, .after and .filter (the filter as JSON, cut to 512
// bytes) from the request; at the end .records_sent (server) or
// .records_received (client), .records_lost, and either .end_reason and
// .cursor from the E frame, or an error status with .error_code from the
// X frame (or the connection's failure). The server adds client.address,
// client.port and collectord.query.client (the hello's client name), the
// client server.address and server.port. A response cut short by a cancel
// ends with reason cancelled and is not an error.
//
// Tracing costs one span per query, never work per record. Off, it costs
// nothing: no span, no allocation, no attribute is built. The client then
// still forwards the span already in its context, if any, so that a
// traced server joins the caller's trace.
package query

// Where the code is, for those who work on it:
//
//   - kind.go: Kind, what a request asks for.
//   - messages.go: the JSON bodies (Hello, Request, End, Error).
//   - protocol.go: the binary framing: frame headers, B and L bodies.
//   - filter.go, trace_filter.go: Filter, compiled once, matched per record.
//   - handler.go, engine.go: Handler and Run, a query against a ring.
//   - client.go: Dial and Client.Query.
//   - server.go: Options, the Server's lifecycle, accepting and refusing
//     connections.
//   - conn.go: one connection: its reader goroutine, its queries served one
//     at a time, its closing.
//   - handshake.go: what a connection passes before its first query: the
//     TLS handshake, the hello, the token, and the Access it is granted.
//   - access.go: Access, what a query may see.
//   - peer_linux.go: the credentials of a client on a UNIX socket.
//   - write.go: the frames a connection writes, batched and buffered.
//   - stats.go: ServerStats and the counters behind it.
//   - trace.go, trace_client.go, trace_server.go: the spans (see Tracing).
