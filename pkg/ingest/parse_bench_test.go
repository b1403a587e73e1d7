package ingest

import (
	"testing"

	"github.com/collectord/collectord/pkg/ingest/ingesttest"

	"github.com/collectord/collectord/pkg/record"
)

func BenchmarkParse(b *testing.B) {
	for _, s := range ingesttest.Samples {
		b.Run(s.Name, func(b *testing.B) {
			p := newParserForTest()
			e := record.Entry{Fields: make([]record.Field, 0, 16)}
			in := []byte(s.Data)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				p.Parse(in, &e)
			}
		})
	}
}
