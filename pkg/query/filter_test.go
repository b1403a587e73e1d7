//go:build linux

package query

import (
	"errors"
	"slices"
	"testing"

	"github.com/collectord/collectord/pkg/record"
)

// filterCases pair a filter with what it must keep, stated over entryFor's
// construction rather than through Match.
var filterCases = []struct {
	name   string
	filter Filter
	keep   func(seq uint64) bool
}{
	{"none", Filter{}, func(uint64) bool { return true }},
	{"priority", Filter{Priority: new(3)}, func(s uint64) bool { return s%8 <= 3 }},
	{"priority emerg", Filter{Priority: new(0)}, func(s uint64) bool { return s%8 == 0 }},
	{"facility", Filter{Facility: []int{4, 10}}, func(s uint64) bool { return s%24 == 4 || s%24 == 10 }},
	{"tag", Filter{Tag: "sshd"}, func(s uint64) bool { return s%3 == 0 }},
	{"pid", Filter{PID: new(uint32(1002))}, func(s uint64) bool { return s%2 == 0 && s%5 == 2 }},
	{"uid root", Filter{UID: new(uint32(0))}, func(s uint64) bool { return s%2 == 0 && s%3 == 0 }},
	{"since", Filter{Since: tsFor(50)}, func(s uint64) bool { return s >= 50 }},
	{"until", Filter{Until: tsFor(120)}, func(s uint64) bool { return s < 120 }},
	{"since until", Filter{Since: tsFor(50), Until: tsFor(120)}, func(s uint64) bool { return s >= 50 && s < 120 }},
	{"field", Filter{Fields: map[string]string{"trace_id": "t4"}}, func(s uint64) bool { return s%8 == 4 }},
	{"fields", Filter{Fields: map[string]string{"SDID.x": "y", "trace_id": "t0"}}, func(s uint64) bool { return s%8 == 0 }},
	{"field absent value", Filter{Fields: map[string]string{"trace_id": "t1"}}, func(uint64) bool { return false }},
	{"grep", Filter{Grep: "fail(ed|ure)"}, func(s uint64) bool { return s%5 == 1 || s%5 == 2 }},
	{"grep anchored", Filter{Grep: `^message 1\d `}, func(s uint64) bool { return s >= 10 && s <= 19 }},
	{"unit plain name", Filter{Unit: []string{"demo"}}, func(s uint64) bool { return s%2 == 0 && s%7 == 0 }},
	{"unit full name", Filter{Unit: []string{"demo.socket"}}, func(s uint64) bool { return s%2 == 0 && s%7 == 4 }},
	{"unit glob", Filter{Unit: []string{"demo*"}}, func(s uint64) bool { return s%2 == 0 && (s%7 == 0 || s%7 == 1 || s%7 == 4) }},
	{"unit repeated", Filter{Unit: []string{"sshd", "[cn]*.service"}}, func(s uint64) bool { return s%2 == 0 && (s%7 == 2 || s%7 == 3 || s%7 == 5) }},
	{"unit none matches", Filter{Unit: []string{"demo.slice"}}, func(uint64) bool { return false }},
	{"comm", Filter{Comm: "sshd"}, func(s uint64) bool { return s%2 == 0 && s%7 != 6 && s%4 == 1 }},
	{"unit and comm", Filter{Unit: []string{"demo*"}, Comm: "demo"}, func(s uint64) bool { return s%4 == 0 && (s%7 == 0 || s%7 == 1 || s%7 == 4) }},
	{"combined", Filter{Priority: new(5), Tag: "app", Grep: "retry|done"},
		func(s uint64) bool { return s%8 <= 5 && s%3 == 2 && (s%5 == 3 || s%5 == 4) }},
}

func TestFilterMatch(t *testing.T) {
	for _, tc := range filterCases {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.filter
			if err := f.Compile(); err != nil {
				t.Fatal(err)
			}
			for s := uint64(1); s < 500; s++ {
				e := entryFor(s)
				if got, want := f.Match(tsFor(s), &e), tc.keep(s); got != want {
					t.Fatalf("record %d (%q): Match = %v, want %v", s, e.Message, got, want)
				}
			}
		})
	}
}

func TestFilterCompileErrors(t *testing.T) {
	tests := []struct {
		filter Filter
		field  string
	}{
		{Filter{Priority: new(8)}, "filter.priority"},
		{Filter{Priority: new(-1)}, "filter.priority"},
		{Filter{Facility: []int{3, 24}}, "filter.facility"},
		{Filter{Facility: []int{-1}}, "filter.facility"},
		{Filter{Since: 10, Until: 10}, "filter.until"},
		{Filter{Fields: map[string]string{"": "x"}}, "filter.fields"},
		{Filter{Grep: "fail(ed"}, "filter.grep"},
		{Filter{Unit: []string{"demo[.service"}}, "filter.unit"},
		{Filter{Unit: []string{"ok", ""}}, "filter.unit"},
		{Filter{Unit: []string{`demo\`}}, "filter.unit"},
	}
	for _, tc := range tests {
		err := tc.filter.Compile()
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%+v: Compile = %v, want a *RequestError", tc.filter, err)
			continue
		}
		if re.Field != tc.field {
			t.Errorf("%+v: error %q names %q, want %q", tc.filter, err, re.Field, tc.field)
		}
	}
}

func TestFilterMatchBeforeCompilePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Match on an uncompiled filter did not panic")
		}
	}()
	var f Filter
	f.Match(0, &record.Entry{})
}

func TestFilterMatchDoesNotAllocate(t *testing.T) {
	f := Filter{
		Priority: new(6), Facility: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 16, 20}, Tag: "sshd",
		PID: new(uint32(1004)), UID: new(uint32(0)), Fields: map[string]string{"trace_id": "t0"},
		Grep: `message \d+ (ok|done)`, Unit: []string{"nomatch", "demo*"}, Comm: "demo",
	}
	if err := f.Compile(); err != nil {
		t.Fatal(err)
	}
	entries := make([]record.Entry, 200)
	for i := range entries {
		entries[i] = entryFor(uint64(i))
	}
	matched := 0
	allocs := testing.AllocsPerRun(20, func() {
		for i := range entries {
			if f.Match(tsFor(uint64(i)), &entries[i]) {
				matched++
			}
		}
	})
	if allocs != 0 && !raceEnabled {
		t.Errorf("Match allocates: %v allocations per 200 calls", allocs)
	}
	if matched == 0 {
		t.Error("the filter matched nothing: the test does not exercise grep")
	}
}

func TestDecodeRequest(t *testing.T) {
	good := `{"id":7,"n":100,"after":5000,"follow":true,"filter":{"priority":3,"facility":[4,10],"tag":"sshd",` +
		`"pid":4242,"uid":0,"since":1764023471000000000,"until":1764027071000000000,` +
		`"fields":{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"},"grep":"fail(ed|ure)"},"traceparent":"00-x-y-01"}`
	q, err := DecodeRequest([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != 7 || *q.N != 100 || *q.After != 5000 || !q.Follow || *q.Filter.Priority != 3 ||
		!slices.Equal(q.Filter.Facility, []int{4, 10}) || q.Filter.Tag != "sshd" || *q.Filter.PID != 4242 ||
		*q.Filter.UID != 0 || q.Filter.Since != 1764023471000000000 || q.Filter.Until != 1764027071000000000 ||
		q.Filter.Fields["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || q.Filter.Grep != "fail(ed|ure)" ||
		q.TraceParent != "00-x-y-01" {
		t.Errorf("decoded %+v", q)
	}

	bad := []struct {
		body  string
		id    uint64
		field string
	}{
		{`{"id":3,"n":-1}`, 3, "n"},
		{`{"id":4,"filter":{"grep":"("}}`, 4, "filter.grep"},
		{`{"id":5,"bogus":1}`, 5, ""},
		{`{"id":6,"filter":{"bogus":1}}`, 6, ""},
		{`{"id":8,"n":"ten"}`, 8, ""},
		{`{"after":18446744073709551615}`, 0, "after"},
		{`{} {}`, 0, ""},
		{`[]`, 0, ""},
		{`null`, 0, ""},
		{``, 0, ""},
	}
	for _, tc := range bad {
		q, err := DecodeRequest([]byte(tc.body))
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: err = %v, want a *RequestError", tc.body, err)
			continue
		}
		if re.Field != tc.field || q.ID != tc.id {
			t.Errorf("%s: field %q id %d (%v), want field %q id %d", tc.body, re.Field, q.ID, err, tc.field, tc.id)
		}
	}
}
