//go:build linux

package query

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// benchRing fills a ring with n realistic records (about 100 payload
// bytes each) and returns a reader for it.
func benchRing(b *testing.B, size uint64, n int) *shmring.Reader {
	b.Helper()
	path := filepath.Join(b.TempDir(), "ring")
	w, err := shmring.OpenWriter(path, shmring.Options{Size: size, Records: uint64(2 * n)})
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	for i := range n {
		e := record.Entry{
			Format:   record.FormatRFC3164,
			Flags:    record.FlagCreds,
			Priority: 3<<3 | uint8(i%8),
			PID:      uint32(4000 + i%7),
			Hostname: []byte("web-1"),
			Tag:      []byte(testTags[i%3]),
			Message:  fmt.Appendf(nil, "GET /api/v1/items?id=%d 200 1.%dms user=alice", i, i%10),
		}
		buf = record.AppendEncode(buf[:0], &e)
		if _, err := w.Add(baseTime+int64(i), buf); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			w.Publish()
		}
	}
	w.Close()
	r, err := shmring.OpenReader(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	if st := r.Stats(); st.Head-st.Oldest != uint64(n) {
		b.Fatalf("ring holds %d records, want %d", st.Head-st.Oldest, n)
	}
	return r
}

// reportPerRecord adds records/s and allocs/record (counted over the whole
// process: server and client) to a benchmark that moved records.
func reportPerRecord(b *testing.B, records uint64, before *runtime.MemStats) {
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(records), "allocs/record")
}

// BenchmarkLatest100 dials, asks for the latest 100 records and closes,
// over loopback: what "logctl tail -n 100" costs.
func BenchmarkLatest100(b *testing.B) {
	for _, bc := range []struct {
		name   string
		filter Filter
	}{
		{"all", Filter{}},
		{"grep", Filter{Grep: `id=\d+5 `, Priority: new(6)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := benchRing(b, 16<<20, 100_000)
			srv := newServerForTest(b, r, Options{})
			ctx := context.Background()
			var n uint64
			h := Handler{Record: func(Record) error { n++; return nil }}
			b.ReportAllocs()
			for b.Loop() {
				c, err := Dial(ctx, srv.addr, DialOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Query(ctx, Request{N: new(int64(100)), Filter: bc.filter}, h); err != nil {
					b.Fatal(err)
				}
				c.Close()
			}
			if n != 100*uint64(b.N) {
				b.Fatalf("%d records in %d queries", n, b.N)
			}
		})
	}
}

// BenchmarkDump streams a million records through one connection to a
// handler that does nothing: the server's and client's throughput.
func BenchmarkDump(b *testing.B) {
	const records = 1_000_000
	r := benchRing(b, 256<<20, records)
	srv := newServerForTest(b, r, Options{})
	c := dialForTest(b, srv.addr, DialOptions{})
	ctx := context.Background()
	var n uint64
	h := Handler{Record: func(Record) error { n++; return nil }}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		if _, err := c.Query(ctx, Request{After: new(uint64(0))}, h); err != nil {
			b.Fatal(err)
		}
	}
	if n != records*uint64(b.N) {
		b.Fatalf("%d records in %d dumps", n, b.N)
	}
	reportPerRecord(b, n, &before)
}

// BenchmarkRunDump is BenchmarkDump without the network: Run reading the
// ring directly, as logctl tail --ring does.
func BenchmarkRunDump(b *testing.B) {
	const records = 1_000_000
	r := benchRing(b, 256<<20, records)
	for _, bc := range []struct {
		name   string
		filter Filter
	}{
		{"all", Filter{}},
		{"grep", Filter{Grep: `id=\d+5 `, Priority: new(6)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var n uint64
			h := Handler{Record: func(Record) error { n++; return nil }}
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				if _, err := Run(context.Background(), r, Request{After: new(uint64(0)), Filter: bc.filter}, h); err != nil {
					b.Fatal(err)
				}
			}
			reportPerRecord(b, records*uint64(b.N), &before)
		})
	}
}
