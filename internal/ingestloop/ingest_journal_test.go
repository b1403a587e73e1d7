//go:build linux

package ingestloop

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/record/recordtest"
)

// journalBinary encodes one journald binary-safe field: NAME, newline,
// little-endian 64-bit length, the value, newline.
func journalBinary(name string, value []byte) []byte {
	b := append([]byte(name), '\n')
	b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
	b = append(b, value...)
	return append(b, '\n')
}

// newMemfd creates a memfd holding data, sealed with seals (0: unsealed),
// and returns its descriptor; the caller closes it.
func newMemfd(t testing.TB, data []byte, seals int) int {
	t.Helper()
	fd, err := unix.MemfdCreate("journal-entry", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatalf("memfd_create: %v", err)
	}
	for off := 0; off < len(data); {
		n, err := unix.Write(fd, data[off:])
		if err != nil {
			unix.Close(fd)
			t.Fatalf("write memfd: %v", err)
		}
		off += n
	}
	if seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			unix.Close(fd)
			t.Fatalf("seal memfd: %v", err)
		}
	}
	return fd
}

// sealedMemfd is a memfd sealed the way journald clients seal one.
func sealedMemfd(t testing.TB, data []byte) int {
	t.Helper()
	return newMemfd(t, data, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL)
}

// TestIngestJournal speaks journald's native protocol over a real socket:
// text fields, binary-safe fields, and an entry of several MiB passed in a
// sealed memfd with an empty datagram, as sd_journal_send does when an
// entry does not fit in a datagram.
func TestIngestJournal(t *testing.T) {
	h := startHarness(t, harnessOptions{RingSize: 64 << 20}) // records up to 8 MiB
	sock := dialRaw(t, h.path)

	t.Run("text", func(t *testing.T) {
		data := []byte("MESSAGE=hello journal\nPRIORITY=3\nSYSLOG_IDENTIFIER=jtest\nCUSTOM=x\n")
		send(t, sock, data)
		got := h.next1(t)
		want := ourCreds(record.Entry{Format: record.FormatJournal, Priority: 1<<3 | 3, Tag: []byte("jtest"),
			Message: []byte("hello journal"), Fields: recordtest.Fields("CUSTOM", "x")})
		recordtest.Check(t, data, &got, &want)
	})

	t.Run("binary-safe", func(t *testing.T) {
		msg := []byte("line one\nline two\x00after NUL\n")
		blob := []byte{0, 1, '\n', 0xff, '=', 0}
		var data []byte
		data = append(data, "SYSLOG_IDENTIFIER=jtest\nPRIORITY=6\nSYSLOG_FACILITY=3\n"...)
		data = append(data, journalBinary("MESSAGE", msg)...)
		data = append(data, journalBinary("BLOB", blob)...)
		data = append(data, "SYSLOG_PID=4242\n_PID=1\n"...)
		send(t, sock, data)
		got := h.next1(t)
		want := ourCreds(record.Entry{Format: record.FormatJournal, Priority: 3<<3 | 6, Tag: []byte("jtest"),
			ClaimedPID: 4242, Message: msg, Fields: []record.Field{{Key: []byte("BLOB"), Value: blob}}})
		recordtest.Check(t, data, &got, &want)
	})

	t.Run("memfd", func(t *testing.T) {
		// 3 MiB of pseudo-random text: any lost, repeated or moved byte
		// shows.
		rnd := rand.New(rand.NewPCG(3, 4))
		msg := make([]byte, 3<<20)
		for i := range msg {
			msg[i] = "abcdefghijklmnopqrstuvwxyz0123456789 ."[rnd.IntN(38)]
		}
		var data []byte
		data = append(data, "MESSAGE="...)
		data = append(data, msg...)
		data = append(data, "\nSYSLOG_IDENTIFIER=jbig\nPRIORITY=4\nCODE_LINE=42\n"...)
		data = append(data, journalBinary("DUMP", []byte("a\nb\x00c"))...)

		before := h.in.Stats()
		fd := sealedMemfd(t, data)
		send(t, sock, nil, fd)
		unix.Close(fd)
		got := h.next1(t)
		if !bytes.Equal(got.Message, msg) {
			t.Errorf("Message: got %d bytes, want the %d sent; first difference at byte %d",
				len(got.Message), len(msg), firstDiff(got.Message, msg))
		}
		got.Message = nil
		want := ourCreds(record.Entry{Format: record.FormatJournal, Priority: 1<<3 | 4, Tag: []byte("jbig"),
			Fields: recordtest.Fields("CODE_LINE", "42", "DUMP", "a\nb\x00c")})
		recordtest.Check(t, []byte("(3 MiB memfd)"), &got, &want)

		after := h.in.Stats()
		if n := after.Datagrams[record.FormatJournal] - before.Datagrams[record.FormatJournal]; n != 1 {
			t.Errorf("Stats().Datagrams[journal] grew by %d, want 1", n)
		}
		if n := after.Bytes[record.FormatJournal] - before.Bytes[record.FormatJournal]; n != uint64(len(data)) {
			t.Errorf("Stats().Bytes[journal] grew by %d, want the memfd's %d", n, len(data))
		}
		for _, r := range Reasons {
			if after.Reasons[r] != before.Reasons[r] {
				t.Errorf("Stats().Reasons[%q] grew by %d, want 0", r, after.Reasons[r]-before.Reasons[r])
			}
		}
	})
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestIngestHostileFDs passes descriptors that are not a sealed memfd, or
// too many of them: each is refused, counted and closed in the daemon
// (which here is this process), and ingest goes on.
func TestIngestHostileFDs(t *testing.T) {
	h := startHarness(t, harnessOptions{})
	sock := dialRaw(t, h.path)
	send(t, sock, []byte("warm-up"))
	h.next1(t)
	before := proctest.OpenFDs(t)

	var pipe [2]int
	if err := unix.Pipe2(pipe[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	file, err := unix.Open(filepath.Join(t.TempDir(), "f"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(file, []byte("MESSAGE=from a regular file\n")); err != nil {
		t.Fatal(err)
	}
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	entry := []byte("MESSAGE=smuggled\n")
	hostile := []struct {
		name string
		fd   int
	}{
		{"unsealed memfd", newMemfd(t, entry, 0)},
		{"memfd without F_SEAL_WRITE", newMemfd(t, entry, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)},
		{"pipe", pipe[0]},
		{"regular file", file},
		{"socket", sp[0]},
	}
	for _, fd := range hostile {
		send(t, sock, nil, fd.fd)
	}
	// Descriptors with a non-empty datagram, which is stored; and more
	// descriptors than the daemon accepts (the kernel drops the rest).
	send(t, sock, []byte("MESSAGE=text with a descriptor\n"), sp[1])
	six := make([]int, 6)
	for i := range six {
		six[i] = sealedMemfd(t, entry)
	}
	send(t, sock, nil, six...)
	send(t, sock, []byte("after the hostile ones"))

	// Our own copies are no longer needed; the pipe's write end stays to
	// probe whether the daemon still holds the read end.
	for _, fd := range hostile {
		if fd.fd != pipe[0] {
			unix.Close(fd.fd)
		}
	}
	unix.Close(pipe[0])
	unix.Close(sp[1])
	for _, fd := range six {
		unix.Close(fd)
	}

	got := h.next(t, 2)
	want := ourCreds(record.Entry{Format: record.FormatJournal, Flags: record.FlagDefaultPriority,
		Priority: record.DefaultPriority, Message: []byte("text with a descriptor")})
	recordtest.Check(t, []byte("text with a descriptor"), &got[0], &want)
	want = ourCreds(record.Entry{Format: record.FormatRaw, Flags: record.FlagDefaultPriority,
		Priority: record.DefaultPriority, Message: []byte("after the hostile ones")})
	recordtest.Check(t, []byte("after the hostile ones"), &got[1], &want)

	// Everything sent before the last record has been handled, so every
	// descriptor the daemon received is closed by now.
	if _, err := unix.Write(pipe[1], []byte("x")); !errors.Is(err, unix.EPIPE) {
		t.Errorf("write to the pipe whose read end was passed = %v, want EPIPE (the daemon still holds the read end)", err)
	}
	unix.Close(pipe[1])
	if after := proctest.OpenFDs(t); after != before {
		t.Errorf("open descriptors: %d before, %d after; the daemon leaked %d", before, after, after-before)
	}

	st := h.in.Stats()
	w := wantStats(st, map[record.Format]uint64{record.FormatRaw: 2, record.FormatJournal: 1}, map[string]uint64{
		// One per descriptor received: 5 alone, 1 with text, 4 of the 6.
		ReasonRejectedFD:       5 + 1 + 4,
		ReasonControlTruncated: 1,
		// The empty datagrams that carried no usable memfd are dropped.
		ReasonEmpty: 5 + 1,
	})
	checkStats(t, st, w)
}
