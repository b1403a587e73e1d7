package flood

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"
)

// DefaultReconnect is how long a connection the server closed waits
// before it is opened again.
const DefaultReconnect = time.Second

// Options configure a Flood. Zero fields take their defaults.
type Options struct {
	// Conns is how many connections to hold. Default 1.
	Conns int
	// Reconnect is how long to wait before replacing a connection the
	// server closed. Default DefaultReconnect (1s).
	Reconnect time.Duration
}

// Flood is a set of held connections; see the package documentation.
type Flood struct {
	addr      string
	reconnect time.Duration
	stop      chan struct{}
	wg        sync.WaitGroup

	mu       sync.Mutex
	conns    []net.Conn // by slot; nil while a slot waits to reconnect
	replaced int        // connections the server closed
	changed  chan struct{}
}

// partialHeader is what half the connections send: two of the four bytes
// of a frame's length.
var partialHeader = []byte{0x10, 0x00}

// Start opens o.Conns connections to addr (host:port) and returns once
// each is connected (the server may already have closed some). An error
// closes those opened.
func Start(addr string, o Options) (*Flood, error) {
	f := &Flood{addr: addr, reconnect: o.Reconnect, stop: make(chan struct{}), changed: make(chan struct{})}
	if f.reconnect <= 0 {
		f.reconnect = DefaultReconnect
	}
	f.conns = make([]net.Conn, max(o.Conns, 1))
	for i := range f.conns {
		nc, err := f.dial(i)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("flood: connection %d of %d: %w", i+1, len(f.conns), err)
		}
		f.conns[i] = nc
		f.wg.Go(func() { f.hold(i, nc) })
	}
	return f, nil
}

// dial opens the connection of slot i and, on odd slots, sends the
// partial header.
func (f *Flood) dial(i int) (net.Conn, error) {
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		return nil, err
	}
	if i%2 == 1 {
		if _, err := nc.Write(partialHeader); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return nc, nil
}

// hold waits for the server to close slot i's connection nc, counts it,
// and opens another after f.reconnect, until Close.
func (f *Flood) hold(i int, nc net.Conn) {
	var buf [512]byte
	for {
		for {
			if _, err := nc.Read(buf[:]); err != nil {
				break // closed by the server, or by Close
			}
		}
		nc.Close()
		f.mu.Lock()
		f.conns[i] = nil
		select {
		case <-f.stop:
			f.mu.Unlock()
			return
		default:
		}
		f.replaced++
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
		for {
			select {
			case <-f.stop:
				return
			case <-time.After(f.reconnect):
			}
			var err error
			if nc, err = f.dial(i); err == nil {
				break
			}
		}
		f.mu.Lock()
		select {
		case <-f.stop:
			f.mu.Unlock()
			nc.Close()
			return
		default:
		}
		f.conns[i] = nc
		f.mu.Unlock()
	}
}

// Replaced returns how many connections the server has closed so far.
func (f *Flood) Replaced() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.replaced
}

// WaitReplaced waits until the server has closed at least n connections,
// or ctx ends (its error is returned).
func (f *Flood) WaitReplaced(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		got, changed := f.replaced, f.changed
		f.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("flood: %d connections closed by the server, want %d: %w", got, n, ctx.Err())
		}
	}
}

// Close closes every connection and stops reconnecting; it returns once
// every goroutine has ended. It may be called more than once.
func (f *Flood) Close() {
	f.mu.Lock()
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	for _, nc := range f.conns {
		if nc != nil {
			nc.Close()
		}
	}
	f.mu.Unlock()
	f.wg.Wait()
}
