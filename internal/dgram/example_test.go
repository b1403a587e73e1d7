//go:build linux

package dgram_test

import (
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/collectord/collectord/internal/dgram"
)

// A minimal ingest loop: bind the socket, receive batches, read journald
// memfds, close every passed descriptor, and stop on the read deadline.
func ExampleReceiver() {
	dir, err := os.MkdirTemp("", "dgram-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "log")

	conn, err := dgram.Listen(path, dgram.ListenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	r, err := dgram.NewReceiver(conn, dgram.ReceiverOptions{})
	if err != nil {
		log.Fatal(err)
	}

	// A client, as logger(1) or log/syslog would be.
	client, err := net.Dial("unixgram", path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprint(client, "<13>hello")
	fmt.Fprint(client, "<13>world")
	client.Close()

	received := 0
	for received < 2 {
		msgs, err := r.Receive()
		if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
			return // shutting down
		}
		if err != nil {
			log.Fatal(err)
		}
		for i := range msgs {
			m := &msgs[i] // not a copy: CloseFDs must empty the original
			data := m.Data
			if len(data) == 0 && len(m.FDs) == 1 {
				// journald's large-entry protocol. The bytes are a
				// fresh allocation, ours to keep.
				data, _, err = dgram.ReadSealedMemfd(m.FDs[0], 64<<20)
				if err != nil {
					log.Print(err)
				}
			}
			m.CloseFDs()
			// m.Data aliases the Receiver's buffer: copy to keep it.
			fmt.Printf("%q from our pid: %v\n", data, m.Creds.OK && int(m.Creds.PID) == os.Getpid())
			received++
		}
	}
	// Output:
	// "<13>hello" from our pid: true
	// "<13>world" from our pid: true
}
