//go:build unix

package ingest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"log/syslog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/ingest/ingesttest"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/record/recordtest"
)

var updateParseSeeds = flag.Bool("update-parse-seeds", false, "rewrite testdata/fuzz/FuzzParse from datagrams captured from real clients")

// listenClientSocket binds a unixgram socket in a temporary directory.
func listenClientSocket(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, path
}

// recvClientDatagram returns the next datagram on conn, failing after 10 seconds.
func recvClientDatagram(t *testing.T, conn *net.UnixConn) []byte {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("receive datagram: %v", err)
	}
	return buf[:n]
}

// runClientProgram runs a client program that sends to the socket and returns its
// pid; without the program the test is skipped (see proctest.NeedTool).
func runClientProgram(t *testing.T, name string, args ...string) int {
	t.Helper()
	path := proctest.NeedTool(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr.Bytes())
	}
	return cmd.Process.Pid
}

// writeParseSeed stores a datagram in the FuzzParse seed corpus when run with
// -args -update-parse-seeds.
func writeParseSeed(t *testing.T, name string, data []byte) {
	t.Helper()
	if !*updateParseSeeds {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestParseRealClients sends a message with each client the daemon must accept,
// captures the datagram on a real socket and checks the parse.
func TestParseRealClients(t *testing.T) {
	host, _ := os.Hostname()
	tests := []struct {
		name string
		// send delivers one datagram to path and returns the sender's pid
		// when the client writes it into the message (0 otherwise).
		send func(t *testing.T, path string) int
		want record.Entry // Format, Priority, Tag, MsgID, Message, Fields
		// stamped: the message carries the send time (checked to ±2s).
		stamped bool
		// withHost: the message carries this host's name, in full or up to
		// its first dot.
		withHost bool
		// For messages whose exact text depends on the client's version
		// (Python's traceback layout), Message is checked by prefix and
		// suffix instead.
		msgPrefix, msgSuffix string
	}{
		{
			name: "logger",
			send: func(t *testing.T, path string) int {
				runClientProgram(t, "logger", "-u", path, "-t", "app", "hi")
				return 0
			},
			want:    record.Entry{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("hi")},
			stamped: true,
		},
		{
			name: "logger-pid",
			send: func(t *testing.T, path string) int {
				return runClientProgram(t, "logger", "-d", "-u", path, "-t", "app", "-i", "-p", "daemon.err", "two\nlines")
			},
			want:    record.Entry{Format: record.FormatRFC3164, Priority: 3<<3 | 3, Tag: []byte("app"), Message: []byte("two\nlines")},
			stamped: true,
		},
		{
			name: "logger-rfc3164",
			send: func(t *testing.T, path string) int {
				runClientProgram(t, "logger", "-d", "--rfc3164", "-u", path, "-t", "app", "hi")
				return 0
			},
			want:     record.Entry{Format: record.FormatRFC3164, Priority: 13, Tag: []byte("app"), Message: []byte("hi")},
			stamped:  true,
			withHost: true,
		},
		{
			name: "logger-rfc5424",
			send: func(t *testing.T, path string) int {
				return runClientProgram(t, "logger", "-d", "--rfc5424", "--sd-id", "zoo@123", "--sd-param", `tiger="hungry"`,
					"--msgid", "MID", "-i", "-u", path, "-t", "app", "hi")
			},
			want: record.Entry{Format: record.FormatRFC5424, Priority: 13, Tag: []byte("app"),
				MsgID: []byte("MID"), Message: []byte("hi"),
				Fields: recordtest.Fields("timeQuality.tzKnown", "1", "timeQuality.isSynced", "0", "zoo@123.tiger", "hungry")},
			stamped:  true,
			withHost: true,
		},
		{
			name: "python",
			send: func(t *testing.T, path string) int {
				runClientProgram(t, "python3", "-c", `
import logging, logging.handlers, socket, sys
log = logging.getLogger("app")
log.addHandler(logging.handlers.SysLogHandler(address=sys.argv[1], socktype=socket.SOCK_DGRAM))
try:
    1/0
except ZeroDivisionError:
    log.exception("boom")
`, path)
				return 0
			},
			want:      record.Entry{Format: record.FormatPython, Priority: 11},
			msgPrefix: "boom\nTraceback (most recent call last):\n",
			msgSuffix: "\nZeroDivisionError: division by zero",
		},
		{
			name: "gosyslog",
			send: func(t *testing.T, path string) int {
				w, err := syslog.Dial("unixgram", path, syslog.LOG_USER|syslog.LOG_INFO, "app")
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				if err := w.Warning("hi"); err != nil {
					t.Fatal(err)
				}
				return os.Getpid()
			},
			want:    record.Entry{Format: record.FormatRFC3164, Priority: 12, Tag: []byte("app"), Message: []byte("hi")},
			stamped: true,
		},
		{
			name: "slog-json",
			send: func(t *testing.T, path string) int {
				c, err := net.Dial("unixgram", path)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				// Each Handle is one Write, hence one datagram.
				slog.New(slog.NewJSONHandler(c, nil)).Warn("disk low", "free_mb", 12, "path", "/var")
				return 0
			},
			want: record.Entry{Format: record.FormatJSON, Priority: 12, Message: []byte("disk low"),
				Fields: recordtest.Fields("free_mb", "12", "path", "/var")},
			stamped: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, path := listenClientSocket(t)
			before := time.Now()
			tt.want.ClaimedPID = uint32(tt.send(t, path))
			after := time.Now()
			data := recvClientDatagram(t, conn)
			t.Logf("datagram: %q", data)
			writeParseSeed(t, tt.name, data)

			var p Parser // real clock and time.Local, as in the daemon
			var got record.Entry
			p.Parse(data, &got)
			if tt.stamped {
				// RFC 3164 stamps have whole seconds.
				ts := time.Unix(0, got.SourceTime)
				if ts.Before(before.Add(-2*time.Second)) || ts.After(after.Add(2*time.Second)) {
					t.Errorf("SourceTime %v, want between %v and %v", ts, before, after)
				}
				tt.want.SourceTime = got.SourceTime
			}
			if tt.withHost {
				short, _, _ := strings.Cut(host, ".")
				if h := string(got.Hostname); h != host && h != short {
					t.Errorf("Hostname = %q, want %q or %q", h, host, short)
				}
				tt.want.Hostname = got.Hostname
			}
			if tt.msgPrefix != "" || tt.msgSuffix != "" {
				if !bytes.HasPrefix(got.Message, []byte(tt.msgPrefix)) || !bytes.HasSuffix(got.Message, []byte(tt.msgSuffix)) {
					t.Errorf("Message = %q, want prefix %q and suffix %q", got.Message, tt.msgPrefix, tt.msgSuffix)
				}
				tt.want.Message = got.Message
			}
			recordtest.Check(t, data, &got, &tt.want)
		})
	}
	if *updateParseSeeds {
		// No real client for these is installed; seed them from the
		// benchmark samples, which follow the protocol documents.
		for _, s := range ingesttest.Samples {
			switch s.Name {
			case "journal", "journal-binary", "json-escaped", "raw":
				writeParseSeed(t, s.Name, []byte(s.Data))
			}
		}
	}
}
