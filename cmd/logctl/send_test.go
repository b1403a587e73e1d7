package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestSend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	recv := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	var stderr bytes.Buffer
	code := run(context.Background(), []string{"send", "--socket", path, "-p", "local3.err", "-t", "myapp", "hello", "world"}, nil, &stderr, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := regexp.MustCompile(fmt.Sprintf(`^<%d>[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d myapp\[%d\]: hello world$`, 19<<3|3, os.Getpid()))
	if got := recv(); !want.MatchString(got) {
		t.Fatalf("datagram %q does not match %v", got, want)
	}

	code = run(context.Background(), []string{"send", "--socket", path, "-t", "x"}, strings.NewReader("line one\nline two\n"), &stderr, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, line := range []string{"line one", "line two"} {
		if got := recv(); !strings.HasPrefix(got, "<13>") || !strings.HasSuffix(got, ": "+line) {
			t.Fatalf("datagram %q, want user.notice with %q", got, line)
		}
	}
}

func TestSendErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"send", "-p", "loud", "x"}, 2, `unknown level "loud"`},
		{[]string{"send", "--socket", "/nonexistent/s.sock", "x"}, 1, "is collectord running?"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), tc.args, nil, &stderr, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
}
