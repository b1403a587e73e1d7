package kafkatest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/collectord/collectord/internal/proctest"
)

// Message is a record of the topic as kcat read it.
type Message struct {
	Partition int32
	Offset    int64
	Time      time.Time   // the record's timestamp (milliseconds)
	Key       *string     // nil when the record has no key
	Payload   string      // the value, byte for byte
	Headers   [][2]string // name and value, in the record's order

	// The headers the forwarder sets, parsed: Seq is 0 when absent.
	Seq    uint64
	RingID string
	Host   string
}

// kcatFormat is how kcat prints each message (-f): a line of numbers and
// the headers, then the key and the value, whose lengths the line gives,
// byte for byte. (kcat -J says the same as JSON, which takes ten times
// longer to decode under the race detector.) kcat prints headers as
// name=value,name=value without escaping: parseHeaders refuses what that
// makes ambiguous.
const kcatFormat = `%p %o %T %K %S %h\n%k%s\n`

// Consume reads the topic from the beginning with kcat until it holds at
// least want distinct seq headers, then to the end the brokers have at
// that moment, and returns every message read, duplicates included,
// ordered by partition and offset. kcat -e exits at the current end, so
// Consume runs it again as long as seqs are missing, each time asking
// kcat to wait (-c) for as many messages as could complete the set. If
// want distinct seqs have not arrived within proctest.Timeout it fails
// the test, saying how many had.
func (c *Cluster) Consume(t testing.TB, want int) []Message {
	t.Helper()
	kcat := proctest.NeedTool(t, "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), proctest.Timeout)
	defer cancel()
	var msgs []Message
	have := 0 // distinct seqs in msgs
	// Every run reads from the beginning; the last one, to the end of a
	// topic that only grows, holds what the others read. The first runs
	// to the end too: a forwarder that has caught up needs no more.
	for final := true; ; final = have >= want {
		// A fetch at the end waits fetch.wait.max.ms (500ms by default)
		// for more before kcat sees the end: shorten it.
		args := []string{"-C", "-b", strings.Join(c.Brokers, ","), "-t", c.Topic, "-o", "beginning", "-q",
			"-X", "fetch.wait.max.ms=20", "-f", kcatFormat}
		if final {
			args = append(args, "-e")
		} else {
			// Reading this many from the beginning reads at least
			// want-distinct messages not read before.
			args = append(args, "-c", strconv.Itoa(len(msgs)+want-have))
		}
		got, err := runKcat(ctx, kcat, args)
		if ctx.Err() != nil {
			t.Fatalf("kcat: %d messages with %d distinct seqs on topic %s after %v, want %d distinct",
				len(msgs), have, c.Topic, proctest.Timeout, want)
		}
		if err != nil {
			t.Fatal(err)
		}
		msgs, have = got, distinct(got)
		if final && have >= want {
			break
		}
	}
	// kcat prints each partition's messages in order, partitions
	// interleaved.
	byPartition := map[int32][]Message{}
	for _, m := range msgs {
		byPartition[m.Partition] = append(byPartition[m.Partition], m)
	}
	out := msgs[:0:0]
	for _, p := range slices.Sorted(maps.Keys(byPartition)) {
		out = append(out, byPartition[p]...)
	}
	return out
}

// distinct counts the distinct seqs of msgs.
func distinct(msgs []Message) int {
	seen := make(map[uint64]struct{}, len(msgs))
	for _, m := range msgs {
		seen[m.Seq] = struct{}{}
	}
	return len(seen)
}

// runKcat runs kcat with args and parses what it prints.
func runKcat(ctx context.Context, kcat string, args []string) ([]Message, error) {
	cmd := exec.CommandContext(ctx, kcat, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start kcat: %w", err)
	}
	msgs, perr := parseMessages(bufio.NewReaderSize(stdout, 1<<20))
	if perr != nil {
		cmd.Process.Kill()
	}
	if err := cmd.Wait(); err != nil && perr == nil {
		return nil, fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.Bytes())
	}
	return msgs, perr
}

// parseMessages reads messages printed with kcatFormat until r ends.
func parseMessages(r *bufio.Reader) ([]Message, error) {
	var msgs []Message
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			return msgs, nil
		}
		if err != nil {
			return msgs, fmt.Errorf("read kcat's output: %w", err)
		}
		m, keyLen, valueLen, err := parseLine(strings.TrimSuffix(line, "\n"))
		if err != nil {
			return msgs, err
		}
		body := make([]byte, max(keyLen, 0)+max(valueLen, 0)+1)
		if _, err := io.ReadFull(r, body); err != nil {
			return msgs, fmt.Errorf("read kcat's output: partition %d offset %d: %w", m.Partition, m.Offset, err)
		}
		if body[len(body)-1] != '\n' {
			return msgs, fmt.Errorf("kcat's output: partition %d offset %d: no newline after the value", m.Partition, m.Offset)
		}
		if keyLen >= 0 {
			m.Key = new(string(body[:keyLen]))
		}
		m.Payload = string(body[max(keyLen, 0) : len(body)-1])
		msgs = append(msgs, m)
	}
}

// parseLine parses the line kcatFormat prints before a message's key and
// value: partition, offset, timestamp, key and value lengths (-1: null),
// headers.
func parseLine(line string) (m Message, keyLen, valueLen int, err error) {
	f := strings.SplitN(line, " ", 6)
	if len(f) != 6 {
		return m, 0, 0, fmt.Errorf("kcat printed %q: want partition, offset, time, key and value lengths, headers", line)
	}
	p, err1 := strconv.ParseInt(f[0], 10, 32)
	o, err2 := strconv.ParseInt(f[1], 10, 64)
	ts, err3 := strconv.ParseInt(f[2], 10, 64)
	keyLen, err4 := strconv.Atoi(f[3])
	valueLen, err5 := strconv.Atoi(f[4])
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return m, 0, 0, fmt.Errorf("kcat printed %q: %w", line, err)
	}
	m = Message{Partition: int32(p), Offset: o, Time: time.UnixMilli(ts)}
	if m.Headers, err = parseHeaders(f[5]); err != nil {
		return m, 0, 0, fmt.Errorf("partition %d offset %d: %w", m.Partition, m.Offset, err)
	}
	for _, h := range m.Headers {
		switch h[0] {
		case "seq":
			if m.Seq, err = strconv.ParseUint(h[1], 10, 64); err != nil {
				return m, 0, 0, fmt.Errorf("partition %d offset %d: header seq %q: %w", m.Partition, m.Offset, h[1], err)
			}
		case "ring_id":
			m.RingID = h[1]
		case "host":
			m.Host = h[1]
		}
	}
	return m, keyLen, valueLen, nil
}

// parseHeaders parses kcat's name=value,name=value. A name or value
// holding ',' or '=' would make it ambiguous: that is an error.
func parseHeaders(s string) ([][2]string, error) {
	if s == "" {
		return nil, nil
	}
	var hs [][2]string
	for h := range strings.SplitSeq(s, ",") {
		name, value, ok := strings.Cut(h, "=")
		if !ok || strings.Contains(value, "=") {
			return nil, fmt.Errorf("headers %q: a name or a value holds ',' or '=': kcat's output is ambiguous", s)
		}
		hs = append(hs, [2]string{name, value})
	}
	return hs, nil
}

// Dedupe returns the first message (in msgs' order) of each seq, and how
// many messages repeat a seq seen before them: what a consumer dropping
// duplicates by seq keeps and drops.
func Dedupe(msgs []Message) (bySeq map[uint64]Message, duplicates int) {
	bySeq = make(map[uint64]Message, len(msgs))
	for _, m := range msgs {
		if _, ok := bySeq[m.Seq]; ok {
			duplicates++
			continue
		}
		bySeq[m.Seq] = m
	}
	return bySeq, duplicates
}
