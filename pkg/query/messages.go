package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Hello is the body of an H frame, the first frame a client sends.
type Hello struct {
	Protocol    int    `json:"protocol"`              // the protocol version the client speaks; required
	Client      string `json:"client,omitempty"`      // the client program, for logs
	TraceParent string `json:"traceparent,omitempty"` // W3C trace context of the caller's span
	Token       string `json:"token,omitempty"`       // bearer token, for a server that needs one
}

// DecodeHello parses the body of an H frame. Unknown keys are ignored; a
// missing protocol is an error wrapping ErrProtocol.
func DecodeHello(body []byte) (Hello, error) {
	var w struct {
		Protocol    *int   `json:"protocol"`
		Client      string `json:"client"`
		TraceParent string `json:"traceparent"`
		Token       string `json:"token"`
	}
	if err := decodeJSON(body, &w, false); err != nil {
		return Hello{}, protocolErrorf("hello: %v", err)
	}
	if w.Protocol == nil {
		return Hello{}, protocolErrorf("hello: protocol is required")
	}
	return Hello{Protocol: *w.Protocol, Client: w.Client, TraceParent: w.TraceParent, Token: w.Token}, nil
}

// HelloReply is the body of the h frame: the server accepted the hello.
type HelloReply struct {
	Protocol int    `json:"protocol"` // the protocol version the server speaks
	Server   string `json:"server"`   // the server program
	// RingID identifies the ring file (hex of its creation time in Unix
	// nanoseconds). It changes only when the ring is recreated, which
	// restarts sequence numbers: a cursor is valid only with its RingID.
	RingID string `json:"ring_id"`
	Head   uint64 `json:"head"`   // the next sequence number to be written
	Oldest uint64 `json:"oldest"` // the oldest sequence number held
	// MaxN is the largest n a query may ask for: NoMaxN from servers that
	// answer any n with what the ring holds; older servers refused more
	// than their max_n with CodeLimit.
	MaxN int64 `json:"max_n"`
	// Access is what the client may read: AccessAllName ("all"), or
	// AccessOwnName ("own"): only the records UID's processes sent. Empty
	// from servers older than the local socket, which show every record.
	Access string  `json:"access,omitempty"`
	UID    *uint32 `json:"uid,omitempty"` // with Access "own": whose records
	// Stats is true when the server answers S frames (Client.Stats).
	Stats bool `json:"stats,omitempty"`
}

// The values of HelloReply.Access.
const (
	AccessAllName = "all" // every record
	AccessOwnName = "own" // the records of one uid (see Access)
)

// DecodeHelloReply parses the body of an h frame. An error wraps
// ErrProtocol.
func DecodeHelloReply(body []byte) (HelloReply, error) {
	var h HelloReply
	if err := decodeJSON(body, &h, false); err != nil {
		return HelloReply{}, protocolErrorf("hello reply: %v", err)
	}
	return h, nil
}

// DefaultN is how many records a query without after or n returns.
const DefaultN = 10

// NoMaxN is the max_n of a server that takes any n: a larger n than the
// ring holds returns what it holds, streamed in batches.
const NoMaxN = math.MaxInt64

// Request is the body of a Q frame: which records to send. See
// docs/PROTOCOL.md for the meaning of each key.
//
// N and After are pointers because zero is a meaningful value for both
// ("no records, just the cursor" and "from the first record"); write
// new(int64(100)).
type Request struct {
	ID uint64 `json:"id,omitempty"` // echoed in the E or X frame that ends the response

	// N is how many records: without After, the latest N matching (nil
	// means DefaultN); with After, at most N matching (nil means no
	// limit). With Follow, N bounds only the backlog when After is nil,
	// and the whole response when After is set (so a follow with after
	// and n ends with ReasonDone after N records).
	N *int64 `json:"n,omitempty"`
	// After selects the records with a sequence number greater than
	// *After, instead of the latest N.
	After *uint64 `json:"after,omitempty"`
	// Follow keeps the response open, streaming records as they are
	// written, until it is cancelled.
	Follow bool `json:"follow,omitempty"`
	// Filter selects records; its zero value selects all.
	Filter Filter `json:"filter,omitzero"`

	TraceParent string `json:"traceparent,omitempty"` // W3C trace context of the caller's span
}

// DecodeRequest parses and compiles the body of a Q frame. Unknown keys
// and trailing bytes are errors. The error is a *RequestError, which the
// server answers with X bad_request; the returned Request carries the ID
// when it could be read, so that the error can echo it.
func DecodeRequest(body []byte) (Request, error) {
	var q Request
	if err := decodeJSON(body, &q, true); err != nil {
		// Best effort: find the id so that the error frame can echo it.
		var idOnly struct {
			ID uint64 `json:"id"`
		}
		_ = json.Unmarshal(body, &idOnly)
		return Request{ID: idOnly.ID}, &RequestError{Err: err}
	}
	if err := q.Compile(); err != nil {
		return q, err
	}
	return q, nil
}

// Compile validates the request and compiles its filter; Run and the
// server call it. The error is a *RequestError naming the bad key.
func (q *Request) Compile() error {
	if q.N != nil && *q.N < 0 {
		return &RequestError{Field: "n", Err: fmt.Errorf("%d is negative", *q.N)}
	}
	if q.After != nil && *q.After == math.MaxUint64 {
		return &RequestError{Field: "after", Err: errors.New("out of range")}
	}
	return q.Filter.Compile()
}

// RequestError is a request that cannot be run: a body that is not one JSON
// object of known keys, or a value out of range. The server answers it with
// X bad_request and keeps the connection.
type RequestError struct {
	Field string // the bad key ("n", "filter.grep"); empty when the body does not parse
	Err   error  // what is wrong with it
}

// Error returns "bad request: FIELD: problem".
func (e *RequestError) Error() string {
	if e.Field == "" {
		return "bad request: " + e.Err.Error()
	}
	return "bad request: " + e.Field + ": " + e.Err.Error()
}

// Unwrap returns the underlying problem.
func (e *RequestError) Unwrap() error { return e.Err }

// Reason says why a response ended.
type Reason string

// The reasons an E frame gives.
const (
	ReasonDone      Reason = "done"      // every record asked for was sent
	ReasonCancelled Reason = "cancelled" // the client cancelled (sent C, or closed)
	ReasonShutdown  Reason = "shutdown"  // the server is stopping: reconnect and resume after Cursor
)

// End is the body of an E frame, which ends a response.
type End struct {
	ID uint64 `json:"id,omitempty"` // the request's ID
	// Cursor is the sequence number of the last record examined, whether
	// or not it matched (or lost): ask for After: Cursor to continue
	// exactly where the response stopped.
	Cursor uint64 `json:"cursor"`
	Reason Reason `json:"reason"`
}

// DecodeEnd parses the body of an E frame. An error wraps ErrProtocol.
func DecodeEnd(body []byte) (End, error) {
	var e End
	if err := decodeJSON(body, &e, false); err != nil {
		return End{}, protocolErrorf("end: %v", err)
	}
	if e.Reason == "" {
		return End{}, protocolErrorf("end: no reason")
	}
	return e, nil
}

// Code is the machine-readable kind of an X frame.
type Code string

// The error codes of protocol version 1.
const (
	CodeVersion      Code = "version"      // the server does not speak the client's protocol version; closed
	CodeBadRequest   Code = "bad_request"  // the query (or, then closed, a frame) does not parse
	CodeLimit        Code = "limit"        // n exceeded an older server's max_n (servers now answer any n)
	CodeBusy         Code = "busy"         // too many connections: retry after RetryAfter, with jitter; closed
	CodeUnauthorized Code = "unauthorized" // the client may not query this server; closed
	CodeTimeout      Code = "timeout"      // no hello in time; closed
	CodeShutdown     Code = "shutdown"     // the server is stopping; closed
	CodeInternal     Code = "internal"     // the server failed
)

// Error is the body of an X frame, an error reported by the server. Client
// methods return it as an error; match it with errors.As.
type Error struct {
	ID         uint64        // the request's ID, for errors that answer a query
	Code       Code          // what kind of error
	Message    string        // for people
	RetryAfter time.Duration // with CodeBusy: wait this long (plus jitter) before reconnecting
}

// errorWire is Error as JSON.
type errorWire struct {
	ID           uint64 `json:"id,omitempty"`
	Code         Code   `json:"code"`
	Message      string `json:"message"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

// Error returns "CODE: message", with the retry delay when there is one.
func (e *Error) Error() string {
	s := "server error " + string(e.Code) + ": " + e.Message
	if e.RetryAfter > 0 {
		s += " (retry after " + e.RetryAfter.String() + ")"
	}
	return s
}

// ErrUnauthorized matches (with errors.Is) the error of a server that
// refused the client's credentials: an *Error with CodeUnauthorized.
var ErrUnauthorized = errors.New("unauthorized")

// Is lets errors.Is(err, ErrUnauthorized) match an X unauthorized.
func (e *Error) Is(target error) bool {
	return target == ErrUnauthorized && e.Code == CodeUnauthorized
}

// MarshalJSON encodes e as the body of an X frame.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(errorWire{ID: e.ID, Code: e.Code, Message: e.Message, RetryAfterMS: e.RetryAfter.Milliseconds()})
}

// DecodeError parses the body of an X frame. An error wraps ErrProtocol.
func DecodeError(body []byte) (*Error, error) {
	var w errorWire
	if err := decodeJSON(body, &w, false); err != nil {
		return nil, protocolErrorf("error: %v", err)
	}
	if w.Code == "" {
		return nil, protocolErrorf("error: no code")
	}
	if w.RetryAfterMS < 0 || w.RetryAfterMS > int64(24*time.Hour/time.Millisecond) {
		return nil, protocolErrorf("error: retry_after_ms %d out of range", w.RetryAfterMS)
	}
	return &Error{ID: w.ID, Code: w.Code, Message: w.Message, RetryAfter: time.Duration(w.RetryAfterMS) * time.Millisecond}, nil
}

// decodeJSON decodes body, which must be exactly one JSON object, into v.
func decodeJSON(body []byte, v any, strict bool) error {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// marshalJSON encodes one of this package's message types, which cannot
// fail to encode.
func marshalJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("query: encoding " + strconv.Quote(fmt.Sprintf("%T", v)) + ": " + err.Error())
	}
	return b
}
