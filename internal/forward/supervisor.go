package forward

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Supervisor runs the forwarder in a process of its own, `EXE forward`,
// and keeps it running: a forwarder that exits is started again, after a
// backoff that doubles from restartMin up to restartMax (and starts over
// once one ran restartReset). It is the daemon's side of the process
// boundary:
//
//   - The forwarder reads its Config as one JSON line on its stdin, and
//     stops, flushing what the client holds, when its stdin ends: when
//     Stop closes it, or when the daemon dies, however it dies.
//   - It writes a Stats JSON line on its stdout every second, and a last
//     one as it stops; Stats returns the latest, with the counters of the
//     processes before it added, so that they only grow.
//   - It logs to the daemon's stderr.
//
// A Supervisor's methods are safe for concurrent use.
type Supervisor struct {
	exe string
	cfg []byte // the Config as one JSON line
	log *slog.Logger

	stop    chan struct{} // closed by Stop
	stopped chan struct{} // closed when the supervising goroutine ends

	mu       sync.Mutex
	base     Stats // counters of the processes that exited
	last     Stats // the running process's latest report
	running  bool
	restarts uint64
	stdin    io.Closer // the running process's lifeline
	proc     *os.Process
}

// Restart backoff of the forwarder process.
const (
	restartMin   = time.Second
	restartMax   = time.Minute
	restartReset = time.Minute
)

// Supervise starts the forwarder process (exe forward) with cfg and keeps
// it running until Stop.
func Supervise(exe string, cfg Config, log *slog.Logger) (*Supervisor, error) {
	line, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode forwarder config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{exe: exe, cfg: append(line, '\n'), log: log, stop: make(chan struct{}), stopped: make(chan struct{})}
	s.base.Errors = map[string]uint64{}
	go s.supervise()
	return s, nil
}

// supervise runs the process again and again until Stop.
func (s *Supervisor) supervise() {
	defer close(s.stopped)
	backoff := restartMin
	for {
		started := time.Now()
		err := s.runOnce()
		select {
		case <-s.stop:
			return
		default:
		}
		if time.Since(started) >= restartReset {
			backoff = restartMin
		}
		s.log.Error("forwarder exited; starting it again", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, restartMax)
		s.mu.Lock()
		s.restarts++
		s.mu.Unlock()
	}
}

// runOnce runs one forwarder process until it exits.
func (s *Supervisor) runOnce() error {
	cmd := exec.Command(s.exe, "forward")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s forward: %w", s.exe, err)
	}
	s.mu.Lock()
	s.running, s.stdin, s.proc = true, stdin, cmd.Process
	stopping := s.isStopping()
	s.mu.Unlock()
	if stopping {
		stdin.Close()
	} else if _, err := stdin.Write(s.cfg); err != nil {
		s.log.Warn("send the forwarder its configuration", "err", err)
	}
	lines := bufio.NewScanner(stdout)
	lines.Buffer(make([]byte, 0, 4096), 1<<20)
	for lines.Scan() {
		var st Stats
		if err := json.Unmarshal(lines.Bytes(), &st); err != nil {
			s.log.Warn("unreadable forwarder report", "err", err)
			continue
		}
		s.mu.Lock()
		s.last = st
		s.mu.Unlock()
	}
	err = cmd.Wait()
	s.mu.Lock()
	s.base = addCounters(s.base, s.last)
	s.last = Stats{}
	s.running, s.stdin, s.proc = false, nil, nil
	s.mu.Unlock()
	stdin.Close()
	if err == nil {
		err = errors.New("exited with status 0")
	}
	return err
}

func (s *Supervisor) isStopping() bool {
	select {
	case <-s.stop:
		return true
	default:
		return false
	}
}

// Stats returns the forwarder's latest report with the counters of the
// processes before it added, whether a forwarder process runs now, and
// how many times one was started again.
func (s *Supervisor) Stats() (st Stats, running bool, restarts uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st = addCounters(s.base, s.last)
	st.Acked, st.LagRecords, st.LagSeconds = s.last.Acked, s.last.LagRecords, s.last.LagSeconds
	st.Pending, st.Breaker = s.last.Pending, s.last.Breaker
	return st, s.running, s.restarts
}

// Stop tells the forwarder to stop (its stdin ends), waits for it to
// flush and exit, and stops supervising. If ctx ends first, the process
// is killed: what it had not recorded as acknowledged is sent again by the
// next forwarder.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	if !s.isStopping() {
		close(s.stop)
		if s.stdin != nil {
			s.stdin.Close()
		}
	}
	s.mu.Unlock()
	select {
	case <-s.stopped:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if s.proc != nil {
		s.proc.Kill()
	}
	s.mu.Unlock()
	<-s.stopped
	return ctx.Err()
}

// addCounters returns a's counters plus b's (the gauges are a's).
func addCounters(a, b Stats) Stats {
	a.Records += b.Records
	a.Bytes += b.Bytes
	a.Lost += b.Lost
	a.Dropped += b.Dropped
	errs := make(map[string]uint64, len(ErrorKinds))
	for k, v := range a.Errors {
		errs[k] += v
	}
	for k, v := range b.Errors {
		errs[k] += v
	}
	a.Errors = errs
	for i := range a.Latency.Counts {
		a.Latency.Counts[i] += b.Latency.Counts[i]
	}
	a.Latency.Count += b.Latency.Count
	a.Latency.Sum += b.Latency.Sum
	return a
}

// Child is the forwarder process's side (`collectord forward`): it reads
// its Config from stdin, stops when stdin ends or ctx is done, and writes
// a Stats line to stdout on every report.
func Child(ctx context.Context, stdin io.Reader, stdout io.Writer, log *slog.Logger) error {
	in := bufio.NewReader(stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil // stopped before it started
		}
		return fmt.Errorf("read forwarder config: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(line, &cfg); err != nil {
		return fmt.Errorf("decode forwarder config: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, in) // until the daemon closes it, or dies
		cancel()
	}()
	enc := json.NewEncoder(stdout)
	return Run(ctx, cfg, Options{Logger: log, Report: func(st Stats) {
		if err := enc.Encode(st); err != nil {
			cancel() // the daemon is gone
		}
	}})
}
