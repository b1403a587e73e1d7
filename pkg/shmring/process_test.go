//go:build linux

package shmring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The multi-process tests re-execute the test binary in a child role named
// by SHMRING_ROLE; TestMain dispatches to it.
func TestMain(m *testing.M) {
	switch os.Getenv("SHMRING_ROLE") {
	case "":
		os.Exit(m.Run())
	case "writer":
		os.Exit(childWriter())
	case "waker":
		os.Exit(childWaker())
	case "reader":
		os.Exit(childReader())
	default:
		fmt.Fprintln(os.Stderr, "unknown SHMRING_ROLE")
		os.Exit(2)
	}
}

const stressSpread = 300 // payload sizes 8..307 bytes

func envUint(name string) uint64 {
	v, err := strconv.ParseUint(os.Getenv(name), 10, 64)
	if err != nil {
		panic(name + ": " + err.Error())
	}
	return v
}

// childWriter appends records with seq-derived payloads in random batches
// until SHMRING_COUNT records exist (0: forever, until killed).
func childWriter() int {
	w, err := OpenWriter(os.Getenv("SHMRING_PATH"), Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	count := envUint("SHMRING_COUNT")
	buf := make([]byte, stressSpread+8)
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	for count == 0 || w.Stats().Head <= count {
		for n := 1 + rng.IntN(64); n > 0 && (count == 0 || w.Stats().Head <= count); n-- {
			seq := w.Stats().Head
			p := buf[:sizeFor(seq, stressSpread)]
			fillPayload(p, seq)
			if _, err := w.Add(int64(seq)*1000, p); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		w.Publish()
	}
	return 0
}

type readerReport struct {
	Read, Lost, Damaged, Waits uint64
	Err                        string
}

// childReader follows the ring from the first record until it has passed
// SHMRING_COUNT, verifying every record, and prints a JSON report.
func childReader() int {
	report := func(rep readerReport) int {
		json.NewEncoder(os.Stdout).Encode(rep)
		return 0
	}
	r, err := OpenReader(os.Getenv("SHMRING_PATH"))
	if err != nil {
		return report(readerReport{Err: err.Error()})
	}
	count := envUint("SHMRING_COUNT")
	slow := os.Getenv("SHMRING_SLOW") != ""
	var rep readerReport
	c := r.Cursor(FirstSeq)
	want := make([]byte, stressSpread+8)
	expect := uint64(FirstSeq)
	for c.Pos() <= count {
		rec, lost, err := c.Next()
		rep.Lost += lost
		expect += lost
		if errors.Is(err, ErrNoRecord) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err = r.Wait(ctx, c.Pos())
			cancel()
			if err != nil {
				rep.Err = fmt.Sprintf("wait at %d: %v", c.Pos(), err)
				return report(rep)
			}
			rep.Waits++
			continue
		}
		if rec.Seq != expect {
			rep.Err = fmt.Sprintf("got seq %d, expected %d (lost reported %d)", rec.Seq, expect, lost)
			return report(rep)
		}
		w := want[:sizeFor(rec.Seq, stressSpread)]
		fillPayload(w, rec.Seq)
		if !bytes.Equal(rec.Payload, w) || rec.Time != int64(rec.Seq)*1000 {
			rep.Err = fmt.Sprintf("seq %d: payload or time damaged", rec.Seq)
			return report(rep)
		}
		expect++
		rep.Read++
		if slow && rec.Seq%512 == 0 {
			time.Sleep(time.Millisecond) // fall behind so the writer laps us
		}
	}
	rep.Damaged = c.Damaged()
	return report(rep)
}

func childCmd(role, path string, count uint64, extra ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SHMRING_ROLE="+role, "SHMRING_PATH="+path,
		"SHMRING_COUNT="+strconv.FormatUint(count, 10))
	cmd.Env = append(cmd.Env, extra...)
	cmd.Stderr = os.Stderr
	return cmd
}

// TestMultiProcessStress runs one writer and four reader processes on a ring
// small enough to wrap thousands of times. Every reader must see strictly
// increasing seqs with intact payloads, and lose exactly what it reports.
func TestMultiProcessStress(t *testing.T) {
	count := uint64(1_000_000)
	if testing.Short() {
		count = 100_000
	}
	path := filepath.Join(t.TempDir(), "ring")
	w, err := OpenWriter(path, Options{Size: MinSize, Records: 512})
	if err != nil {
		t.Fatal(err)
	}
	w.Close()

	type reader struct {
		cmd *exec.Cmd
		out bytes.Buffer
	}
	var readers []*reader
	for i := range 4 {
		var extra []string
		if i%2 == 1 {
			extra = append(extra, "SHMRING_SLOW=1")
		}
		rd := &reader{cmd: childCmd("reader", path, count, extra...)}
		rd.cmd.Stdout = &rd.out
		if err := rd.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		readers = append(readers, rd)
	}
	wcmd := childCmd("writer", path, count)
	if out, err := wcmd.Output(); err != nil {
		t.Fatalf("writer: %v %s", err, out)
	}
	r := newReaderForTest(t, path)
	st := r.Stats()
	laps := (st.Head - FirstSeq) * (8 + stressSpread/2 + recHeaderSize) / st.Size
	t.Logf("ring of %d bytes / %d records wrapped about %d times", st.Size, st.Records, laps)
	if st.Head != count+1 {
		t.Fatalf("head = %d, want %d", st.Head, count+1)
	}
	for i, rd := range readers {
		if err := rd.cmd.Wait(); err != nil {
			t.Fatalf("reader %d: %v", i, err)
		}
		var rep readerReport
		if err := json.Unmarshal(rd.out.Bytes(), &rep); err != nil {
			t.Fatalf("reader %d: %v: %q", i, err, rd.out.String())
		}
		t.Logf("reader %d: read %d, lost %d, waited %d times", i, rep.Read, rep.Lost, rep.Waits)
		if rep.Err != "" {
			t.Fatalf("reader %d: %s", i, rep.Err)
		}
		if rep.Read+rep.Lost != count || rep.Damaged != 0 {
			t.Fatalf("reader %d: read %d + lost %d != %d written (damaged %d)", i, rep.Read, rep.Lost, count, rep.Damaged)
		}
	}
}

// TestCrashRecovery SIGKILLs a writer process at random points during
// appends, 60 times; after each kill the ring reopens with every published
// record intact, nothing damaged, and sequence numbers continuing.
func TestCrashRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ring")
	rng := rand.New(rand.NewPCG(1, 2))
	var lastHead uint64 = FirstSeq
	kills := 60
	if testing.Short() {
		kills = 15
	}
	for i := range kills {
		cmd := childCmd("writer", path, 0)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child has published something new, then kill it
		// a random moment later, most likely in the middle of a batch.
		r := waitForRing(t, path)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := r.Wait(ctx, lastHead); err != nil {
			t.Fatalf("kill %d: writer published nothing: %v", i, err)
		}
		cancel()
		time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
		seen := r.Head()
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		r.Close()

		w, err := OpenWriter(path, Options{})
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", i, err)
		}
		rs := w.Recovered()
		head := w.Stats().Head
		if rs.Damaged != 0 || rs.Rebuilt || head < seen || head <= lastHead {
			t.Fatalf("kill %d: recovery %+v, head %d, published before kill %d, previous head %d", i, rs, head, seen, lastHead)
		}
		w.Close()
		r = newReaderForTest(t, path)
		c := r.Cursor(r.Latest(1 << 62))
		first := c.Pos()
		seqs, lost := readAll(t, c, stressSpread)
		if lost != 0 || uint64(len(seqs)) != head-first {
			t.Fatalf("kill %d: read %d records from %d, lost %d, head %d", i, len(seqs), first, lost, head)
		}
		lastHead = head
	}
	t.Logf("%d kills, final head %d", kills, lastHead)
}

func waitForRing(t *testing.T, path string) *Reader {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := OpenReader(path)
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // the child is creating the file
	}
}
