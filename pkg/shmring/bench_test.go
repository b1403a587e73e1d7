//go:build linux

package shmring

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// benchDir prefers tmpfs, where a production ring lives (/run).
func benchDir(b *testing.B) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "shmring-bench")
		if err == nil {
			b.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return b.TempDir()
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 1024} {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("payload=%d/batch=%d", size, batch), func(b *testing.B) {
				w, err := OpenWriter(filepath.Join(benchDir(b), "ring"), Options{Size: 64 << 20})
				if err != nil {
					b.Fatal(err)
				}
				defer w.Close()
				p := make([]byte, size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					w.Add(int64(i), p)
					if (i+1)%batch == 0 {
						w.Publish()
					}
				}
				w.Publish()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// halfFullRing returns a reader of a 64 MiB ring holding half as many
// records of size bytes as it has descriptors. Both ends close when b ends.
func halfFullRing(b *testing.B, size int) *Reader {
	b.Helper()
	path := filepath.Join(benchDir(b), "ring")
	w, err := OpenWriter(path, Options{Size: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { w.Close() })
	p := make([]byte, size)
	for i := range int(w.descCount) / 2 {
		w.Add(int64(i), p)
	}
	w.Publish()
	r, err := OpenReader(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return r
}

func BenchmarkCursorNext(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			r := halfFullRing(b, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			c := r.Cursor(0)
			for i := 0; i < b.N; i++ {
				if _, _, err := c.Next(); errors.Is(err, ErrNoRecord) {
					c = r.Cursor(0)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkWakeLatency measures the time from Publish in this process to
// the moment a reader process blocked in Wait has the record, with the
// machine otherwise idle: one record at a time, each after the reader has
// gone back to sleep. It reports p50 and p99 in microseconds.
func BenchmarkWakeLatency(b *testing.B) {
	path := filepath.Join(benchDir(b), "ring")
	w, err := OpenWriter(path, Options{Size: MinSize})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHMRING_ROLE=waker", "SHMRING_PATH="+path,
		"SHMRING_COUNT="+strconv.Itoa(b.N))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	if !lines.Scan() { // "ready": the reader is mapped and about to wait
		b.Fatal("reader did not start")
	}
	var ts [8]byte
	b.ResetTimer()
	for range b.N {
		time.Sleep(200 * time.Microsecond) // let the reader fall asleep in FUTEX_WAIT
		binary.LittleEndian.PutUint64(ts[:], uint64(time.Now().UnixNano()))
		w.Append(0, ts[:])
	}
	var lat []float64
	for lines.Scan() {
		v, err := strconv.ParseFloat(lines.Text(), 64)
		if err == nil {
			lat = append(lat, v)
		}
	}
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	if len(lat) != b.N {
		b.Fatalf("reader saw %d of %d records", len(lat), b.N)
	}
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)/2], "p50-µs")
	b.ReportMetric(lat[len(lat)*99/100], "p99-µs")
}

// childWaker is the reader side of BenchmarkWakeLatency: it prints the
// latency of each record in microseconds.
func childWaker() int {
	r, err := OpenReader(os.Getenv("SHMRING_PATH"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	count := envUint("SHMRING_COUNT")
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(out, "ready")
	out.Flush()
	lat := make([]float64, 0, count)
	c := r.Cursor(r.Head())
	for uint64(len(lat)) < count {
		rec, _, err := c.Next()
		if errors.Is(err, ErrNoRecord) {
			if err := r.Wait(context.Background(), c.Pos()); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			continue
		}
		now := time.Now().UnixNano()
		sent := int64(binary.LittleEndian.Uint64(rec.Payload))
		lat = append(lat, float64(now-sent)/1e3)
	}
	for _, v := range lat {
		fmt.Fprintln(out, strconv.FormatFloat(v, 'f', 2, 64))
	}
	out.Flush()
	return 0
}

// BenchmarkCursorSkip is a follow of one user's records passing over other
// users' records in place (NextWhere with a keep function that rejects
// every record): its cost per record passed over.
func BenchmarkCursorSkip(b *testing.B) {
	r := halfFullRing(b, 120)
	reject := func(prefix []byte) bool { return prefix[0] == 1 }
	b.ReportAllocs()
	b.ResetTimer()
	c := r.Cursor(0)
	for passed := 0; passed < b.N; {
		start := c.Pos()
		if _, _, err := c.NextWhere(reject); !errors.Is(err, ErrNoRecord) {
			b.Fatalf("NextWhere: %v, want ErrNoRecord", err)
		}
		passed += int(c.Pos() - start)
		c = r.Cursor(0)
	}
}
