//go:build linux

package query

import (
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/collectord/collectord/pkg/shmring"
)

// TestSlowlorisDropped: clients that start a hello and never finish it are
// answered X timeout and closed when the handshake timeout runs out, also
// one that keeps trickling bytes of a frame that announced the largest body
// allowed (the deadline covers the whole hello, not each read). The
// connections they held are then free again.
func TestSlowlorisDropped(t *testing.T) {
	tr := newRingForTest(t, shmring.MinSize)
	srv := newServerForTest(t, tr.r, Options{HandshakeTimeout: 50 * time.Millisecond})
	header := binary.LittleEndian.AppendUint32(nil, MaxClientFrame)
	header = append(header, byte(FrameHello))
	for _, tc := range []struct {
		name    string
		send    []byte
		trickle bool
	}{
		{"part of a frame header", header[:2], false},
		{"a header and part of the body", append(header, `{"protocol":1,"cl`...), false},
		{"a header, then one byte at a time", header, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, srv.addr)
			if _, err := rc.nc.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			var wg sync.WaitGroup
			if tc.trickle {
				// Pacing only: the server must drop the client whatever
				// the rate, as long as the frame stays incomplete.
				wg.Go(func() {
					tick := time.NewTicker(5 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							return
						case <-tick.C:
						}
						if _, err := rc.nc.Write([]byte{' '}); err != nil {
							return // the server has closed the connection
						}
					}
				})
			}
			rc.expectError(CodeTimeout)
			rc.expectClosed()
			close(stop)
			wg.Wait()
		})
	}
	waitFor(t, "the slowloris connections to be closed", func() bool { return srv.Stats().ConnsOpen == 0 })
	if st := srv.Stats(); st.ConnsTotal != 3 || st.ConnsRejected != 0 {
		t.Fatalf("stats %+v", st)
	}
}
