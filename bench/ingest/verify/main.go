//go:build linux

// Command verify checks that a collectord ring holds exactly what loadgen
// sent: for every sender, each sequence number 0..M-1 once and in order,
// each with kernel credentials.
//
//	verify -ring PATH -senders N -count M [-pid PID] [-from SEQ] [-dropped K]
//
// It reads the ring file (read-only, through pkg/shmring, as any reader
// would) from record -from (default: the first) up to the published head,
// decodes every record with pkg/record and parses "s=ID n=SEQ" at the start
// of its message, which is where both loadgen formats put it (for rfc3164
// the daemon has already split off the header and the tag).
//
// It prints one line of JSON (see result) and exits 1 if anything is wrong:
// a sequence number missing, stored twice or out of order, a record that is
// not loadgen's (foreign) or cannot be decoded, a record without trusted
// credentials (or, with -pid, with another sender pid), or records the ring
// overwrote before they could be read (ring_lost). With -dropped K (the
// sender dropped K datagrams the socket refused, loadgen -drop) exactly K
// numbers must be missing.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// result is what verify prints.
type result struct {
	Records    uint64 `json:"records"`
	Senders    int    `json:"senders"`
	Missing    uint64 `json:"missing"`      // numbers 0..M-1 never seen
	Duplicates uint64 `json:"duplicates"`   // records repeating a number already seen
	OutOfOrder uint64 `json:"out_of_order"` // records numbered below one seen earlier from the same sender
	Foreign    uint64 `json:"foreign"`      // records that are not "s=ID n=SEQ" with ID < N, SEQ < M
	NoCreds    uint64 `json:"no_creds"`     // records without FlagCreds, with pid 0, or not -pid
	Corrupt    uint64 `json:"corrupt"`      // payloads record.Decode rejected
	RingLost   uint64 `json:"ring_lost"`    // records overwritten or damaged before being read
	// WithComm counts records with a trusted comm (record.Origin): how
	// many senders the daemon could still attribute. Not checked.
	WithComm uint64 `json:"with_comm"`
}

func (r *result) ok(dropped uint64) bool {
	return r.Missing == dropped && r.Duplicates == 0 && r.OutOfOrder == 0 && r.Foreign == 0 &&
		r.NoCreds == 0 && r.Corrupt == 0 && r.RingLost == 0
}

func main() {
	ring := flag.String("ring", "", "ring file `path` (required)")
	senders := flag.Int("senders", 1, "number of loadgen senders, ids 0..N-1")
	count := flag.Int("count", 0, "datagrams per sender, numbered 0..M-1 (required)")
	pid := flag.Uint("pid", 0, "if set, the trusted pid every record must carry (loadgen's)")
	from := flag.Uint64("from", shmring.FirstSeq, "first ring sequence number to check")
	dropped := flag.Uint64("dropped", 0, "how many numbers the sender dropped: exactly these many must be missing")
	flag.Parse()
	if flag.NArg() > 0 {
		fatalf("unexpected argument %q", flag.Arg(0))
	}
	if *ring == "" || *senders < 1 || *count < 1 {
		fatalf("-ring, -senders >= 1 and -count >= 1 are required")
	}
	res, err := check(*ring, *senders, *count, uint32(*pid), *from)
	if err != nil {
		fatalf("%v", err)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if !res.ok(*dropped) {
		os.Exit(1)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "verify: "+format+"\n", args...)
	os.Exit(1)
}

func check(path string, senders, count int, pid uint32, from uint64) (result, error) {
	r, err := shmring.OpenReader(path)
	if err != nil {
		return result{}, err
	}
	defer r.Close()

	res := result{Senders: senders}
	seen := make([][]bool, senders)
	next := make([]int, senders) // highest number seen so far, plus one
	for i := range seen {
		seen[i] = make([]bool, count)
	}
	// The head is fixed now: the daemon has stopped, and if it had not,
	// reading to a moving head would never end.
	head := r.Head()
	c := r.Cursor(from)
	var e record.Entry
	for c.Pos() < head {
		rec, lost, err := c.Next()
		res.RingLost += lost
		if errors.Is(err, shmring.ErrNoRecord) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("read ring %s at seq %d: %w", path, c.Pos(), err)
		}
		res.Records++
		if err := record.Decode(rec.Payload, &e); err != nil {
			res.Corrupt++
			continue
		}
		if e.Flags&record.FlagCreds == 0 || e.PID == 0 || (pid != 0 && e.PID != pid) {
			res.NoCreds++
		}
		if len(e.Origin.Comm) > 0 {
			res.WithComm++
		}
		id, n, ok := parseIDs(e.Message)
		if !ok || id >= senders || n >= count {
			res.Foreign++
			continue
		}
		switch {
		case seen[id][n]:
			res.Duplicates++
		case n < next[id]:
			res.OutOfOrder++
		}
		seen[id][n] = true
		next[id] = max(next[id], n+1)
	}
	for _, s := range seen {
		for _, ok := range s {
			if !ok {
				res.Missing++
			}
		}
	}
	return res, nil
}

// parseIDs reads "s=ID n=SEQ" (decimal, SEQ zero-padded) at the start of
// msg, followed by a space or the end.
func parseIDs(msg []byte) (id, n int, ok bool) {
	id, msg, ok = field(msg, "s=")
	if !ok || len(msg) == 0 || msg[0] != ' ' {
		return 0, 0, false
	}
	n, msg, ok = field(msg[1:], "n=")
	if !ok || (len(msg) > 0 && msg[0] != ' ') {
		return 0, 0, false
	}
	return id, n, true
}

// field parses name followed by 1..10 decimal digits.
func field(b []byte, name string) (v int, rest []byte, ok bool) {
	if len(b) < len(name) || string(b[:len(name)]) != name {
		return 0, nil, false
	}
	b = b[len(name):]
	i := 0
	for ; i < len(b) && i < 10 && '0' <= b[i] && b[i] <= '9'; i++ {
		v = v*10 + int(b[i]-'0')
	}
	if i == 0 {
		return 0, nil, false
	}
	return v, b[i:], true
}
