package forward

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Position is what a cursor file records: the ring it belongs to and the
// last sequence number the brokers acknowledged, with every record before
// it acknowledged too (or lost to the ring's overwriting).
type Position struct {
	RingID string // the ring's id (hex of its creation time)
	Seq    uint64 // the last acknowledged sequence number; 0: none yet
}

// cursorFile is the forwarder's cursor file and the lock that makes the
// forwarder the only one using it.
type cursorFile struct {
	path string
	lock *os.File // holds LOCK_EX for the forwarder's life
}

// lockCursor takes the cursor's lock file (path + ".lock"), waiting while
// another forwarder holds it: during an upgrade the new forwarder starts
// before the old one has written its last position. A dead holder's lock
// is released by the kernel.
func lockCursor(path string, wait func() bool) (*cursorFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("cursor directory: %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open cursor lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &cursorFile{path: path, lock: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s.lock: %w", path, err)
		}
		if !wait() {
			f.Close()
			return nil, fmt.Errorf("lock %s.lock: %w", path, ErrCursorBusy)
		}
	}
}

// ErrCursorBusy means another forwarder holds the cursor and this one
// gave up waiting.
var ErrCursorBusy = errors.New("another forwarder holds the cursor")

// read returns the recorded position; a missing file is the zero Position.
// A file that cannot be parsed is an error: guessing could skip records.
func (c *cursorFile) read() (Position, error) {
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return Position{}, nil
	}
	if err != nil {
		return Position{}, fmt.Errorf("read cursor: %w", err)
	}
	return parsePosition(string(b))
}

func parsePosition(s string) (Position, error) {
	var p Position
	var haveID, haveSeq bool
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Position{}, fmt.Errorf("cursor file: line %q is not KEY=VALUE", line)
		}
		switch k {
		case "ring_id":
			p.RingID, haveID = v, true
		case "seq":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return Position{}, fmt.Errorf("cursor file: seq %q: %w", v, err)
			}
			p.Seq, haveSeq = n, true
		}
	}
	if !haveID || !haveSeq {
		return Position{}, errors.New("cursor file: want ring_id= and seq=")
	}
	return p, nil
}

// write replaces the cursor file with p, durably: a temporary file is
// written and synced, renamed over the cursor, and the directory synced,
// so that after a crash the file holds either the old position or the
// new one, never a torn one.
func (c *cursorFile) write(p Position) error {
	tmp := c.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write cursor: %w", err)
	}
	body := fmt.Sprintf("# collectord's Kafka forwarder: every record up to seq is acknowledged\nring_id=%s\nseq=%d\n", p.RingID, p.Seq)
	_, err = f.WriteString(body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, c.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(c.path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write cursor: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// close releases the lock.
func (c *cursorFile) close() error { return c.lock.Close() }
