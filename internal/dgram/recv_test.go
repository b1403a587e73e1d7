//go:build linux

package dgram

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/collectord/collectord/internal/proctest"
)

// self is what the kernel should report for datagrams this process sends.
func self() Creds {
	return Creds{PID: uint32(os.Getpid()), UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), OK: true}
}

func TestReceiveBatch(t *testing.T) {
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{})
	client := dialForTest(t, path)

	// Five datagrams fit in any queue (max_dgram_qlen >= 10 is the kernel
	// default), so all are queued before Receive and one call takes them.
	const n = 5
	for i := range n {
		if _, err := fmt.Fprintf(client, "message %d", i); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := r.Receive()
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if len(msgs) != n {
		t.Fatalf("one Receive returned %d datagrams, want all %d queued", len(msgs), n)
	}
	for i, m := range msgs {
		want := fmt.Sprintf("message %d", i)
		if string(m.Data) != want || m.Size != len(want) || m.Truncated {
			t.Errorf("msgs[%d]: data %q size %d truncated %v, want %q size %d", i, m.Data, m.Size, m.Truncated, want, len(want))
		}
		if m.Creds != self() {
			t.Errorf("msgs[%d].Creds = %+v, want %+v", i, m.Creds, self())
		}
		if len(m.FDs) != 0 || m.ControlTruncated {
			t.Errorf("msgs[%d]: FDs %v ControlTruncated %v, want none", i, m.FDs, m.ControlTruncated)
		}
	}

	// The next batch reuses the buffers and reports only new datagrams.
	if _, err := client.Write([]byte("next")); err != nil {
		t.Fatal(err)
	}
	if m := receiveOne(t, r); string(m.Data) != "next" || m.Creds != self() {
		t.Errorf("second batch: %q %+v", m.Data, m.Creds)
	}
}

func TestReceiveStream(t *testing.T) {
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{BatchSize: 16})
	client := dialForTest(t, path)

	// The sender outpaces the receiver and blocks whenever the queue is
	// full; closing client unblocks it if the test stops early.
	const n = 5000
	senderErr := make(chan error, 1)
	go func() {
		for i := range n {
			if _, err := fmt.Fprintf(client, "message %d", i); err != nil {
				senderErr <- err
				return
			}
		}
		senderErr <- nil
	}()
	defer func() {
		client.Close()
		if err := <-senderErr; err != nil {
			t.Errorf("sender: %v", err)
		}
	}()

	got, calls, largest := 0, 0, 0
	for got < n {
		msgs, err := r.Receive()
		if err != nil {
			t.Fatalf("Receive after %d datagrams: %v", got, err)
		}
		calls++
		largest = max(largest, len(msgs))
		for _, m := range msgs {
			if want := fmt.Sprintf("message %d", got); string(m.Data) != want {
				t.Fatalf("datagram %d is %q, want %q", got, m.Data, want)
			}
			if m.Creds != self() {
				t.Fatalf("datagram %d: creds %+v, want %+v", got, m.Creds, self())
			}
			got++
		}
	}
	t.Logf("%d datagrams in %d Receive calls (%.1f per call, largest batch %d)", n, calls, float64(n)/float64(calls), largest)
}

func TestReceiveCredsOfChild(t *testing.T) {
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{})

	cmd := proctest.ChildCommand(t.Context(), "send", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	pid := cmd.Process.Pid
	if pid == os.Getpid() {
		t.Fatal("child has our pid")
	}

	m := receiveOne(t, r)
	if want := fmt.Sprintf("child %d", pid); string(m.Data) != want {
		t.Errorf("data %q, want %q", m.Data, want)
	}
	want := Creds{PID: uint32(pid), UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), OK: true}
	if m.Creds != want {
		t.Errorf("Creds = %+v, want %+v", m.Creds, want)
	}
}

// TestReceiveFromLogger uses util-linux logger, a real client, run as
// another user when we may, so that every credential differs from ours.
func TestReceiveFromLogger(t *testing.T) {
	loggerPath := proctest.NeedTool(t, "logger")
	// A directory the other user may enter (t.TempDir's parent is 0700).
	dir, err := os.MkdirTemp("", "dgram-logger")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "log")
	conn, err := Listen(path, ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := newReceiverForTest(t, conn, ReceiverOptions{})

	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	cmd := exec.Command(loggerPath, "-d", "-u", path, "-t", "dgramtest", "hello from logger")
	if os.Geteuid() == 0 {
		uid, gid = 65534, 65534
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logger: %v\n%s", err, out)
	}

	m := receiveOne(t, r)
	if !bytes.HasPrefix(m.Data, []byte("<13>")) || !bytes.HasSuffix(m.Data, []byte("dgramtest: hello from logger")) {
		t.Errorf("data %q, want <13>... dgramtest: hello from logger", m.Data)
	}
	want := Creds{PID: uint32(cmd.Process.Pid), UID: uid, GID: gid, OK: true}
	if m.Creds != want {
		t.Errorf("Creds = %+v, want %+v", m.Creds, want)
	}
}

func TestReceiveTruncation(t *testing.T) {
	const maxDatagram = 1024
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{MaxDatagram: maxDatagram})
	client := dialForTest(t, path)

	sizes := []int{0, 1, maxDatagram - 1, maxDatagram, maxDatagram + 1, 100000}
	var sent [][]byte
	for i, size := range sizes {
		b := bytes.Repeat([]byte{byte('a' + i)}, size)
		if _, err := client.Write(b); err != nil {
			t.Fatalf("send %d bytes: %v", size, err)
		}
		sent = append(sent, b)
	}
	msgs, err := r.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != len(sizes) {
		t.Fatalf("received %d datagrams, want %d", len(msgs), len(sizes))
	}
	for i, m := range msgs {
		size := sizes[i]
		wantData := sent[i][:min(size, maxDatagram)]
		if !bytes.Equal(m.Data, wantData) {
			t.Errorf("size %d: got %d bytes, want the first %d", size, len(m.Data), len(wantData))
		}
		if m.Size != size {
			t.Errorf("size %d: Size = %d", size, m.Size)
		}
		if want := size > maxDatagram; m.Truncated != want {
			t.Errorf("size %d: Truncated = %v, want %v", size, m.Truncated, want)
		}
		if m.Data == nil {
			t.Errorf("size %d: Data is nil, want empty", size)
		}
	}
}

func TestReceiveUnblocks(t *testing.T) {
	for _, tc := range []struct {
		name    string
		stop    func(*net.UnixConn)
		wantErr error
	}{
		{"deadline", func(c *net.UnixConn) { c.SetReadDeadline(time.Now()) }, os.ErrDeadlineExceeded},
		{"close", func(c *net.UnixConn) { c.Close() }, net.ErrClosed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, _ := listenForTest(t, ListenOptions{})
			r := newReceiverForTest(t, conn, ReceiverOptions{})
			done := make(chan error, 1)
			go func() {
				msgs, err := r.Receive()
				if err == nil {
					err = fmt.Errorf("Receive returned %d datagrams on an idle socket", len(msgs))
				}
				done <- err
			}()
			waitBlockedInReceive(t)
			tc.stop(conn)
			select {
			case err := <-done:
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("Receive error = %v, want %v", err, tc.wantErr)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Receive still blocked 10s after stop")
			}
		})
	}
}

// TestReceiveDeadlineKeepsQueue checks the shutdown path: a deadline stops
// reading even with datagrams queued, and they are still there afterwards.
func TestReceiveDeadlineKeepsQueue(t *testing.T) {
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{})
	client := dialForTest(t, path)
	if _, err := client.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now())
	if _, err := r.Receive(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Receive past deadline: error %v, want ErrDeadlineExceeded", err)
	}
	conn.SetReadDeadline(time.Time{})
	if m := receiveOne(t, r); string(m.Data) != "kept" {
		t.Errorf("after deadline got %q, want %q", m.Data, "kept")
	}
}

func TestReceiveAllocs(t *testing.T) {
	conn, path := listenForTest(t, ListenOptions{})
	r := newReceiverForTest(t, conn, ReceiverOptions{})
	fd := rawDial(t, path)
	msg := []byte("steady state")

	var failure string
	allocs := testing.AllocsPerRun(200, func() {
		for range 3 {
			if _, err := unix.Write(fd, msg); err != nil {
				failure = err.Error()
				return
			}
		}
		msgs, err := r.Receive()
		if err != nil || len(msgs) != 3 || !msgs[2].Creds.OK {
			failure = "bad Receive"
		}
	})
	if failure != "" {
		t.Fatal(failure)
	}
	if allocs != 0 {
		t.Errorf("Receive allocates %v times per call, want 0", allocs)
	}
}

func TestNewReceiverOptions(t *testing.T) {
	conn, _ := listenForTest(t, ListenOptions{})
	for _, opts := range []ReceiverOptions{
		{BatchSize: -1},
		{BatchSize: MaxBatchSize + 1},
		{MaxDatagram: -1},
		{MaxDatagram: MaxMaxDatagram + 1},
		{MaxFDs: MaxMaxFDs + 1},
	} {
		if _, err := NewReceiver(conn, opts); err == nil {
			t.Errorf("NewReceiver(%+v) succeeded", opts)
		} else if !strings.Contains(err.Error(), "out of range") {
			t.Errorf("NewReceiver(%+v) error %q does not give the range", opts, err)
		}
	}
	if _, err := NewReceiver(conn, ReceiverOptions{BatchSize: MaxBatchSize, MaxDatagram: 1, MaxFDs: MaxMaxFDs}); err != nil {
		t.Errorf("NewReceiver at the limits: %v", err)
	}
}
