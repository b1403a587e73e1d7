package query

import "testing"

// TestKind pins each request shape to its kind and each kind to its name:
// the names are metric label values and span attribute values.
func TestKind(t *testing.T) {
	after := uint64(5)
	for _, tc := range []struct {
		req  Request
		kind Kind
		name string
	}{
		{Request{}, KindLatest, "latest"},
		{Request{N: new(int64(10))}, KindLatest, "latest"},
		{Request{After: &after}, KindAfter, "after"},
		{Request{After: &after, N: new(int64(10))}, KindAfter, "after"},
		{Request{Follow: true}, KindFollow, "follow"},
		{Request{After: &after, Follow: true}, KindFollow, "follow"},
	} {
		if got := KindOf(&tc.req); got != tc.kind || got.String() != tc.name {
			t.Errorf("KindOf(%s) = %d %q, want %d %q", marshalJSON(tc.req), got, got, tc.kind, tc.name)
		}
	}
	if got := Kind(NumKinds).String(); got != "kind(3)" {
		t.Errorf("Kind(NumKinds).String() = %q", got)
	}
}
