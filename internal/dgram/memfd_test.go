//go:build linux

package dgram

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
)

const allSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// newMemfd creates a memfd holding data, adds seals (none if zero) and
// closes it when the test ends.
func newMemfd(t *testing.T, data []byte, seals int) int {
	t.Helper()
	fd, err := unix.MemfdCreate("dgram-test", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	for off := 0; off < len(data); {
		n, err := unix.Pwrite(fd, data[off:], int64(off))
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if seals != 0 {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
			t.Fatalf("add seals %#x: %v", seals, err)
		}
	}
	return fd
}

// sendFDs sends data with fds attached (SCM_RIGHTS) on the connected
// socket c. (net.UnixConn.WriteMsgUnix refuses connected datagram sockets.)
func sendFDs(t *testing.T, c int, data []byte, fds ...int) {
	t.Helper()
	if err := unix.Sendmsg(c, data, unix.UnixRights(fds...), nil, 0); err != nil {
		t.Fatalf("send %d fds: %v", len(fds), err)
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>11)
	}
	return b
}

// TestReceiveSealedMemfd follows journald's protocol for a large entry: an
// empty datagram carrying one sealed memfd.
func TestReceiveSealedMemfd(t *testing.T) {
	proctest.CheckNoFDLeak(t)
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{})
	client := rawDial(t, path)

	content := pattern(5<<20 + 123)
	sendFDs(t, client, nil, newMemfd(t, content, allSeals))

	m := receiveOne(t, r)
	if len(m.Data) != 0 || m.Size != 0 || m.Truncated {
		t.Errorf("datagram: %d bytes, size %d, truncated %v; want empty", len(m.Data), m.Size, m.Truncated)
	}
	if m.Creds != self() {
		t.Errorf("Creds = %+v, want %+v", m.Creds, self())
	}
	if len(m.FDs) != 1 || m.ControlTruncated {
		t.Fatalf("FDs = %v, ControlTruncated %v; want one descriptor", m.FDs, m.ControlTruncated)
	}
	fd := m.FDs[0]
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received descriptor flags %#x, %v; want close-on-exec", flags, err)
	}

	for _, tc := range []struct {
		limit         int64
		wantLen       int
		wantTruncated bool
	}{
		{8 << 20, len(content), false},
		{int64(len(content)), len(content), false},
		{1 << 20, 1 << 20, true},
		{0, 0, true},
	} {
		data, truncated, err := ReadSealedMemfd(fd, tc.limit)
		if err != nil {
			t.Fatalf("ReadSealedMemfd(limit %d): %v", tc.limit, err)
		}
		if !bytes.Equal(data, content[:tc.wantLen]) || truncated != tc.wantTruncated {
			t.Errorf("ReadSealedMemfd(limit %d) = %d bytes (match %v), truncated %v; want the first %d bytes, truncated %v",
				tc.limit, len(data), bytes.Equal(data, content[:len(data)]), truncated, tc.wantLen, tc.wantTruncated)
		}
	}
	// The caller closes; ReadSealedMemfd must not have.
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Errorf("descriptor closed by ReadSealedMemfd: %v", err)
	}
	m.CloseFDs()
	if len(m.FDs) != 0 {
		t.Errorf("after CloseFDs, FDs = %v", m.FDs)
	}
}

func TestReadSealedMemfdRejects(t *testing.T) {
	proctest.CheckNoFDLeak(t)
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{})
	client := rawDial(t, path)
	content := []byte("not to be trusted")

	for _, tc := range []struct {
		name string
		open func(t *testing.T) int
	}{
		{"unsealed memfd", func(t *testing.T) int { return newMemfd(t, content, 0) }},
		{"memfd without write seal", func(t *testing.T) int {
			return newMemfd(t, content, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW)
		}},
		{"memfd without shrink seal", func(t *testing.T) int {
			return newMemfd(t, content, unix.F_SEAL_WRITE|unix.F_SEAL_GROW)
		}},
		{"pipe", func(t *testing.T) int {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
			unix.Write(p[1], content)
			return p[0]
		}},
		{"regular file", func(t *testing.T) int {
			p := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(p, content, 0o600); err != nil {
				t.Fatal(err)
			}
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fd) })
			return fd
		}},
		{"socket", func(t *testing.T) int { return rawDial(t, path) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sendFDs(t, client, nil, tc.open(t))
			m := receiveOne(t, r)
			defer m.CloseFDs()
			if len(m.FDs) != 1 {
				t.Fatalf("FDs = %v, want one", m.FDs)
			}
			data, truncated, err := ReadSealedMemfd(m.FDs[0], 1<<20)
			if !errors.Is(err, ErrNotSealedMemfd) {
				t.Errorf("ReadSealedMemfd error = %v, want ErrNotSealedMemfd", err)
			}
			if data != nil || truncated {
				t.Errorf("ReadSealedMemfd returned %d bytes, truncated %v, with the error", len(data), truncated)
			}
		})
	}
}

func TestReadSealedMemfdErrors(t *testing.T) {
	if _, _, err := ReadSealedMemfd(-1, 1); err == nil || errors.Is(err, ErrNotSealedMemfd) {
		t.Errorf("bad descriptor: error %v, want EBADF", err)
	}
	fd := newMemfd(t, []byte("x"), allSeals)
	if _, _, err := ReadSealedMemfd(fd, -1); err == nil {
		t.Error("negative limit accepted")
	}
}

func TestReceiveTooManyFDs(t *testing.T) {
	proctest.CheckNoFDLeak(t)
	conn, path := listenForTest(t, ListenOptions{})
	client := rawDial(t, path)
	fd := newMemfd(t, nil, 0)
	five := []int{fd, fd, fd, fd, fd}

	for _, tc := range []struct {
		maxFDs int
		want   int
	}{
		{2, 2},
		{-1, 0},
		{0, DefaultMaxFDs},
		{5, 5},
	} {
		r := newReceiverForTest(t, conn, ReceiverOptions{MaxFDs: tc.maxFDs})
		sendFDs(t, client, []byte("fds"), five...)
		if _, err := unix.Write(client, []byte("plain")); err != nil {
			t.Fatal(err)
		}
		msgs, err := r.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 {
			t.Fatalf("MaxFDs %d: received %d datagrams, want 2", tc.maxFDs, len(msgs))
		}
		m := &msgs[0]
		if len(m.FDs) != tc.want || m.ControlTruncated != (tc.want < len(five)) {
			t.Errorf("MaxFDs %d: %d FDs, ControlTruncated %v; want %d, %v",
				tc.maxFDs, len(m.FDs), m.ControlTruncated, tc.want, tc.want < len(five))
		}
		if string(m.Data) != "fds" || m.Creds != self() {
			t.Errorf("MaxFDs %d: data %q creds %+v", tc.maxFDs, m.Data, m.Creds)
		}
		m.CloseFDs()
		if p := msgs[1]; string(p.Data) != "plain" || len(p.FDs) != 0 || p.ControlTruncated || p.Creds != self() {
			t.Errorf("MaxFDs %d: plain datagram %q FDs %v ControlTruncated %v creds %+v",
				tc.maxFDs, p.Data, p.FDs, p.ControlTruncated, p.Creds)
		}
	}
}
