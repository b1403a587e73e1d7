//go:build linux

package query

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkLatest100Tracing is BenchmarkLatest100/all with tracing off
// (nil providers) and on at both ends (SDK providers with a batch span
// processor, as internal/tracing builds them, exporting to memory): what
// tracing adds to "logctl tail -n 100" (dial: a connection per query) and
// to a query on a kept-alive connection (conn).
func BenchmarkLatest100Tracing(b *testing.B) {
	r := benchRing(b, 16<<20, 100_000)
	for _, bc := range []struct {
		name         string
		traced, dial bool
	}{
		{"off/dial", false, true},
		{"on/dial", true, true},
		{"off/conn", false, false},
		{"on/conn", true, false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var srvTP, cliTP trace.TracerProvider
			exp := tracetest.NewInMemoryExporter()
			if bc.traced {
				for _, tp := range []*trace.TracerProvider{&srvTP, &cliTP} {
					sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp))
					b.Cleanup(func() { sdk.Shutdown(context.Background()) })
					*tp = sdk
				}
			}
			srv := newServerForTest(b, r, Options{TracerProvider: srvTP})
			ctx := context.Background()
			var kept *Client
			if !bc.dial {
				kept = dialForTest(b, srv.addr, DialOptions{TracerProvider: cliTP})
			}
			var n uint64
			h := Handler{Record: func(Record) error { n++; return nil }}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c := kept
				if bc.dial {
					var err error
					if c, err = Dial(ctx, srv.addr, DialOptions{TracerProvider: cliTP}); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := c.Query(ctx, Request{N: new(int64(100))}, h); err != nil {
					b.Fatal(err)
				}
				if bc.dial {
					c.Close()
				}
				if i++; i%1000 == 0 {
					exp.Reset() // keep memory flat
				}
			}
			if n != 100*uint64(b.N) {
				b.Fatalf("%d records in %d queries", n, b.N)
			}
		})
	}
}
