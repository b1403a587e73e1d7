package query

import "strconv"

// Kind is what a query asks for, as its request's After and Follow say.
// The Server counts queries by kind, query spans carry it as
// collectord.query.kind, and metrics label queries with its String.
type Kind uint8

// The kinds of query.
const (
	KindLatest Kind = iota // neither After nor Follow: the latest N records
	KindAfter              // After without Follow: the records after a cursor
	KindFollow             // Follow: then every record as it is published
)

// NumKinds bounds Kind values: ServerStats arrays are indexed by them.
const NumKinds = int(KindFollow) + 1

// KindOf returns the kind of query req asks for.
func KindOf(req *Request) Kind {
	switch {
	case req.Follow:
		return KindFollow
	case req.After != nil:
		return KindAfter
	}
	return KindLatest
}

// String returns "latest", "after" or "follow": the kind's name in metric
// labels and span attributes.
func (k Kind) String() string {
	switch k {
	case KindLatest:
		return "latest"
	case KindAfter:
		return "after"
	case KindFollow:
		return "follow"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}
