package ingest

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/collectord/collectord/pkg/ingest/ingesttest"

	"github.com/collectord/collectord/pkg/record"
)

// FuzzParse checks that Parse never panics, that what it produces obeys
// the documented invariants, and that the entry survives record encoding.
// The seed corpus in testdata/fuzz/FuzzParse holds one datagram per client
// format as captured from the real clients.
func FuzzParse(f *testing.F) {
	for _, s := range ingesttest.Samples {
		f.Add([]byte(s.Data))
	}
	p := newParserForTest()
	var e, d record.Entry
	var buf []byte
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		p.Parse(data, &e)
		if !bytes.Equal(data, orig) {
			t.Fatalf("Parse modified its input")
		}
		if e.Format > record.FormatJSON {
			t.Fatalf("Format = %d", e.Format)
		}
		if e.Priority > 191 {
			t.Fatalf("Priority = %d", e.Priority)
		}
		if e.Flags&record.FlagDefaultPriority != 0 && e.Priority != record.DefaultPriority {
			t.Fatalf("FlagDefaultPriority with Priority %d", e.Priority)
		}
		if utf8.Valid(e.Message) == (e.Flags&record.FlagInvalidUTF8 != 0) {
			t.Fatalf("FlagInvalidUTF8 = %v for message %q", e.Flags&record.FlagInvalidUTF8 != 0, e.Message)
		}
		if e.Flags&record.FlagCreds != 0 || e.PID != 0 {
			t.Fatalf("Parse set credentials")
		}
		if e.Format == record.FormatRaw && e.Flags&record.FlagMalformed == 0 && e.Flags&record.FlagDefaultPriority != 0 &&
			!bytes.Equal(e.Message, trimNewlines(data)) {
			t.Fatalf("raw message %q is not the datagram", e.Message)
		}
		if len(e.Message) > len(data) {
			t.Fatalf("message longer than the datagram")
		}
		if len(data) > 0 && data[0] == '{' {
			// Differential check of the JSON scanner against encoding/json,
			// which limits nesting only at 10000 levels.
			isJSON := e.Format == record.FormatJSON
			valid := json.Valid(data)
			if isJSON && !valid {
				t.Fatalf("accepted invalid JSON")
			}
			if !isJSON && valid && bytes.Count(data, []byte("{"))+bytes.Count(data, []byte("[")) <= maxJSONDepth {
				t.Fatalf("rejected valid JSON")
			}
		}

		buf = record.AppendEncode(buf[:0], &e)
		if err := record.Decode(buf, &d); err != nil {
			t.Fatalf("Decode(AppendEncode(e)): %v", err)
		}
		if !d.Equal(&e) {
			t.Fatalf("round trip changed the entry:\n got %+v\nwant %+v", d, e)
		}
	})
}
