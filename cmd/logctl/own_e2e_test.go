//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/collectord/collectord/internal/proctest"
	"github.com/collectord/collectord/pkg/query"
)

// The people in TestTailSeesOwnRecords, beside root: an operator in the
// readers' group, and two users in no group of note.
const (
	readersGID = 4242 // the ring's group, a number no one is in
	readerUID  = 65532
	userBUID   = 65533
	userAUID   = nobody
)

// viewer is someone who logs and asks.
type viewer struct {
	name string
	cred *syscall.Credential // nil: root, as the test runs
	uid  uint32
	all  bool // reads every record on the local socket
}

// stored is a record a viewer sent.
type stored struct {
	seq uint64
	uid uint32
	msg string
	err bool // sent with priority err, the others info
}

// tokenConfig writes a token file holding secret and a daemon
// configuration naming it, with more lines after; it returns both paths.
func tokenConfig(t *testing.T, dir, secret, more string) (token, config string) {
	t.Helper()
	token, config = filepath.Join(dir, "token"), filepath.Join(dir, "collectord.toml")
	if err := os.WriteFile(token, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, fmt.Appendf(nil, "query_token_file = %q\n%s", token, more), 0o644); err != nil {
		t.Fatal(err)
	}
	return token, config
}

// sendAs runs `logctl send` as cred (nil: root) with msgs on its standard
// input and waits until the daemon stored them; it returns the first's
// sequence number.
func sendAs(t *testing.T, d *proctest.Daemon, cred *syscall.Credential, prio string, msgs ...string) uint64 {
	t.Helper()
	_, head := proctest.RingState(t, d.Ring)
	cmd := exec.Command(proctest.Logctl(t), "send", "-p", prio, "-t", "own", "--socket", d.Socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Stdin = strings.NewReader(strings.Join(msgs, "\n") + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("logctl send as %v: %v\n%s", cred, err, out)
	}
	proctest.WaitHead(t, d.Ring, head+uint64(len(msgs)))
	return head
}

// TestTailSeesOwnRecords: root, a member of the readers' group and two
// plain users each log; each asks with logctl, running with their own
// credentials. Over the local socket root and the reader see every record
// and each plain user exactly their own: the latest N, -n all, filters
// (another user's uid gives nothing), cursors, and a follow. Over TCP
// nobody is answered without a token, and everybody with one sees every
// record. With --ring the reader sees everything and the plain users are
// refused; given read access, --ring --own prints exactly what the local
// socket prints them, down to a loss report that does not count other
// users' records. With query_anonymous = "all", TCP without a token
// answers everybody with every record.
func TestTailSeesOwnRecords(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running logctl as other users needs root")
	}
	dir := openDir(t)
	const secret = "0123456789abcdef-own\n"
	_, config := tokenConfig(t, dir, secret, "")
	// The local socket is where a user's own daemon would serve it, so
	// that logctl run with XDG_RUNTIME_DIR=xdg asks it by default.
	xdg := filepath.Join(dir, "xdg")
	d := startDaemon(t, dir, proctest.DaemonOptions{RingSize: "64KiB", QuerySocket: filepath.Join(xdg, "collectord", "query.sock"),
		Args: []string{"--config", config, "--ring-group", strconv.Itoa(readersGID), "--query-anonymous", "none"}})
	defer d.Stop(t)
	local := query.UnixPrefix + d.QuerySocket
	if st, err := os.Stat(d.Ring); err != nil || st.Mode().Perm() != 0o640 || st.Sys().(*syscall.Stat_t).Gid != readersGID {
		t.Fatalf("ring file: %v, %v; want mode 0640, group %d", st.Mode(), err, readersGID)
	}

	viewers := []viewer{
		{"root", nil, 0, true},
		{"reader", &syscall.Credential{Uid: readerUID, Gid: readerUID, Groups: []uint32{readersGID}}, readerUID, true},
		{"user A", &syscall.Credential{Uid: userAUID, Gid: userAUID}, userAUID, false},
		{"user B", &syscall.Credential{Uid: userBUID, Gid: userBUID}, userBUID, false},
	}
	var sent []stored
	send := func(round int) {
		t.Helper()
		for i, v := range viewers {
			msg := fmt.Sprintf("%s says %d", strings.ReplaceAll(v.name, " ", "-"), round)
			isErr := (round+i)%2 == 0
			prio := "info"
			if isErr {
				prio = "err"
			}
			sent = append(sent, stored{seq: sendAs(t, d, v.cred, prio, msg), uid: v.uid, msg: msg, err: isErr})
		}
	}
	visible := func(v viewer, keep func(stored) bool) []stored {
		var out []stored
		for _, s := range sent {
			if (v.all || s.uid == v.uid) && (keep == nil || keep(s)) {
				out = append(out, s)
			}
		}
		return out
	}
	// tail runs logctl tail -o json as v and requires exactly want.
	tail := func(v viewer, what string, want []stored, args ...string) (cursor int64) {
		t.Helper()
		r := logctlAs(t, v.cred, append([]string{"tail", "-o", "json"}, args...)...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s, %s: exit %d, stderr %q", v.name, what, r.code, r.stderr)
		}
		recs, cursor := parseJSON(t, r.stdout)
		var got, wanted []string
		for _, rec := range recs {
			got = append(got, fmt.Sprintf("%d %s", rec.Seq, rec.Message))
		}
		for _, s := range want {
			wanted = append(wanted, fmt.Sprintf("%d %s", s.seq, s.msg))
		}
		if !slices.Equal(got, wanted) {
			t.Errorf("%s, %s:\n got %q\nwant %q", v.name, what, got, wanted)
		}
		return cursor
	}
	last := func(s []stored, n int) []stored { return s[max(0, len(s)-n):] }

	for round := range 3 {
		send(round)
	}
	for _, v := range viewers {
		all := visible(v, nil)
		tail(v, "latest 2", last(all, 2), "--addr", local, "-n", "2")
		tail(v, "-n all", all, "--addr", local, "-n", "all")
		tail(v, "default n", last(all, 10), "--addr", local)
		tail(v, "-p err", visible(v, func(s stored) bool { return s.err }), "--addr", local, "-p", "err", "-n", "all")
		tail(v, "-g ' 1$'", visible(v, func(s stored) bool { return strings.HasSuffix(s.msg, " 1") }), "--addr", local, "-g", " 1$")
		tail(v, "--uid 0", visible(v, func(s stored) bool { return s.uid == 0 }), "--addr", local, "--uid", "0", "-n", "all")
	}
	// Without --addr a plain user's logctl asks the local socket of their
	// own daemon (here, this one).
	for _, v := range viewers[2:] {
		byDefault := logctlEnv(t, v.cred, []string{"XDG_RUNTIME_DIR=" + xdg}, "tail", "-o", "json", "-n", "all")
		byName := logctlAs(t, v.cred, "tail", "-o", "json", "-n", "all", "--addr", local)
		if byDefault != byName || byDefault.code != 0 {
			t.Errorf("%s without --addr: exit %d, %q, stderr %q; want what --addr %s prints, %q",
				v.name, byDefault.code, byDefault.stdout, byDefault.stderr, local, byName.stdout)
		}
	}

	// Cursors: resuming after the cursor of a response gives the records
	// after it, each once, across records of other users.
	cursors := make([]int64, len(viewers))
	for i, v := range viewers {
		cursors[i] = tail(v, "latest 1 with its cursor", last(visible(v, nil), 1), "--addr", local, "-n", "1", "--show-cursor")
	}
	mark := len(sent)
	send(3)
	for i, v := range viewers {
		tail(v, "after the cursor", visible(v, func(s stored) bool { return s.seq > sent[mark-1].seq }),
			"--addr", local, "--after-cursor", strconv.FormatInt(cursors[i], 10), "--show-cursor")
	}

	// A follow of each, from the head on: it prints exactly the records
	// its viewer may see, as they arrive.
	_, head := proctest.RingState(t, d.Ring)
	followers := make([]*follower, len(viewers))
	for i, v := range viewers {
		followers[i] = startFollowerAs(t, v.cred, "tail", "-f", "-o", "json", "--addr", local, "--after-cursor", strconv.FormatUint(head-1, 10))
	}
	mark = len(sent)
	send(4)
	send(5)
	for i, v := range viewers {
		var got []string
		want := visible(v, func(s stored) bool { return s.seq >= head })
		for range want {
			r := followers[i].nextJSON(t)
			got = append(got, fmt.Sprintf("%d %s", r.Seq, r.Message))
		}
		if rest := followers[i].stop(t); len(rest) > 0 {
			t.Errorf("%s's follow printed more: %q", v.name, rest)
		}
		var wanted []string
		for _, s := range want {
			wanted = append(wanted, fmt.Sprintf("%d %s", s.seq, s.msg))
		}
		if !slices.Equal(got, wanted) {
			t.Errorf("%s's follow:\n got %q\nwant %q", v.name, got, wanted)
		}
	}
	if len(sent) != mark+2*len(viewers) {
		t.Fatal("the follow phase lost track of what was sent")
	}

	// TCP: nothing without a token, everything with one (each viewer has a
	// copy of their own).
	for _, v := range viewers {
		token := filepath.Join(dir, "token-"+strconv.Itoa(int(v.uid)))
		if err := os.WriteFile(token, []byte(secret), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(token, int(v.uid), -1); err != nil {
			t.Fatal(err)
		}
		r := logctlAs(t, v.cred, "tail", "--addr", d.QueryAddr, "-n", "all")
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "unauthorized") {
			t.Errorf("%s over TCP without a token: exit %d, stdout %q, stderr %q; want refused", v.name, r.code, r.stdout, r.stderr)
		}
		everyone := viewer{name: v.name + " with a token", cred: v.cred, all: true}
		tail(everyone, "over TCP", visible(everyone, nil), "--addr", d.QueryAddr, "--token-file", token, "-n", "all")
	}

	// --ring: the ring's readers see everything; the others may not open
	// it, and with read access and --own see what the local socket shows
	// them.
	for _, v := range viewers {
		if v.all {
			tail(v, "--ring", visible(v, nil), "--ring", d.Ring, "-n", "all")
			continue
		}
		if r := logctlAs(t, v.cred, "tail", "--ring", d.Ring); r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
			t.Errorf("%s with --ring: exit %d, stderr %q; want permission denied", v.name, r.code, r.stderr)
		}
	}

	// A flood from user B wraps the ring: asking from before it, root is
	// told how many records were lost, each plain user only that some were
	// (the count would include others' records), and each then gets
	// exactly their own of the records the ring still holds.
	flood := make([]string, 1500)
	for i := range flood {
		flood[i] = fmt.Sprintf("flood %d", i)
	}
	sendAs(t, d, viewers[3].cred, "info", flood...)
	oldest, _ := proctest.RingState(t, d.Ring)
	if oldest <= sent[len(sent)-1].seq {
		t.Fatalf("the flood did not wrap the ring: it holds %d.., the last record before it is %d", oldest, sent[len(sent)-1].seq)
	}
	r := logctlAs(t, nil, "tail", "-o", "json", "--addr", local, "--after-cursor", "1", "-n", "all")
	if want := fmt.Sprintf("logctl: %d records lost", oldest-2); r.code != 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("root after the flood: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	held, _ := parseJSON(t, r.stdout)
	if len(held) == 0 || held[0].Seq != oldest {
		t.Fatalf("root after the flood got %d records, want the ring's from %d on", len(held), oldest)
	}
	heldBy := func(uid uint32) (out []string) {
		for _, rec := range held {
			if rec.UID != nil && *rec.UID == uid {
				out = append(out, fmt.Sprintf("%d %s", rec.Seq, rec.Message))
			}
		}
		return out
	}
	if len(heldBy(userBUID)) < len(held)/2 {
		t.Fatalf("user B holds %d of the %d records held; want the flood", len(heldBy(userBUID)), len(held))
	}

	// The plain users: the local socket, and --ring --own with read access,
	// answer alike, loss report included.
	for _, v := range viewers[2:] {
		withAccess := *v.cred
		withAccess.Groups = []uint32{readersGID}
		for _, args := range [][]string{
			{"-n", "3"},
			{"-n", "all"},
			{"-p", "err", "-n", "all"},
			{"--after-cursor", "1", "-n", "all", "--show-cursor"},
			{"--after-cursor", strconv.FormatUint(oldest+10, 10), "--show-cursor"},
		} {
			socket := logctlAs(t, v.cred, append([]string{"tail", "-o", "json", "--addr", local}, args...)...)
			ring := logctlAs(t, &withAccess, append([]string{"tail", "-o", "json", "--ring", d.Ring, "--own"}, args...)...)
			if socket != ring || socket.code != 0 {
				t.Errorf("%s %q: over the socket exit %d, %q, stderr %q;\nwith --ring --own exit %d, %q, stderr %q",
					v.name, args, socket.code, socket.stdout, socket.stderr, ring.code, ring.stdout, ring.stderr)
			}
			if args[0] == "--after-cursor" && args[1] == "1" {
				if !strings.Contains(socket.stderr, "how many of them were yours is not known") || strings.Contains(socket.stderr, "records lost") {
					t.Errorf("%s after the flood: stderr %q, want a loss report without a count", v.name, socket.stderr)
				}
				recs, _ := parseJSON(t, socket.stdout)
				var got []string
				for _, rec := range recs {
					got = append(got, fmt.Sprintf("%d %s", rec.Seq, rec.Message))
				}
				if want := heldBy(v.uid); !slices.Equal(got, want) {
					t.Errorf("%s after the flood:\n got %q\nwant %q", v.name, got, want)
				}
			}
		}
	}

	// query_anonymous = "all" (on the same ring, after a restart): over
	// TCP everybody reads every record without a token, as before the
	// local socket existed.
	d.Stop(t)
	d = startDaemon(t, dir, proctest.DaemonOptions{RingSize: "64KiB", Args: []string{"--ring-group", strconv.Itoa(readersGID)}})
	everything := logctlAs(t, nil, "tail", "-o", "json", "-n", "all", "--ring", d.Ring)
	for _, v := range viewers {
		if r := logctlAs(t, v.cred, "tail", "-o", "json", "-n", "all", "--addr", d.QueryAddr); r != everything {
			t.Errorf("%s over TCP, anonymous all: exit %d, stderr %q, %d bytes; want the %d bytes --ring prints",
				v.name, r.code, r.stderr, len(r.stdout), len(everything.stdout))
		}
	}
}
