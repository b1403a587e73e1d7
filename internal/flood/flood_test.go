package flood

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TestFloodReconnects: a server that reads what each connection sends
// and closes it sees every slot come back, half of them with the partial
// header; the flood counts each close, and Close ends the connections.
func TestFloodReconnects(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	sent := map[string]int{}
	var served sync.WaitGroup
	accepting := make(chan struct{})
	defer func() {
		// The accept loop ends before the wait: it adds to served.
		ln.Close()
		<-accepting
		served.Wait()
	}()
	go func() {
		defer close(accepting)
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			served.Go(func() {
				defer nc.Close()
				nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				b, _ := io.ReadAll(nc) // ends at the deadline: the flood never sends more
				mu.Lock()
				sent[string(b)]++
				mu.Unlock()
			})
		}
	}()

	f, err := Start(ln.Addr().String(), Options{Conns: 4, Reconnect: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.WaitReplaced(ctx, 12); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := f.Replaced(); got < 12 {
		t.Errorf("Replaced() = %d after waiting for 12", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if sent[""] < 6 || sent[string(partialHeader)] < 6 || len(sent) != 2 {
		t.Errorf("the server read %v; want silent connections and partial headers, at least 6 of each", sent)
	}
}
