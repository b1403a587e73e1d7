//go:build linux

package query_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/collectord/collectord/pkg/query"
	"github.com/collectord/collectord/pkg/record"
	"github.com/collectord/collectord/pkg/shmring"
)

// exampleRing writes a few records to a new ring and opens a reader on it.
func exampleRing() (*shmring.Reader, func()) {
	dir, _ := os.MkdirTemp("", "query-example")
	path := filepath.Join(dir, "ring")
	w, err := shmring.OpenWriter(path, shmring.Options{Size: shmring.MinSize})
	if err != nil {
		panic(err)
	}
	for i, msg := range []string{"started", "login failed for root", "listening", "login failed for bob"} {
		e := record.Entry{Priority: 4<<3 | uint8(3+i%2*3), Tag: []byte("sshd"), Message: []byte(msg)}
		w.Add(int64(i), record.AppendEncode(nil, &e))
	}
	w.Close()
	r, err := shmring.OpenReader(path)
	if err != nil {
		panic(err)
	}
	return r, func() { r.Close(); os.RemoveAll(dir) }
}

// printer is a Handler that prints each record's message.
func printer() query.Handler {
	var e record.Entry // reused: Decode does not allocate once it has grown
	return query.Handler{
		Record: func(rec query.Record) error {
			if err := record.Decode(rec.Payload, &e); err != nil {
				return err
			}
			fmt.Printf("%d %s: %s\n", rec.Seq, e.Tag, e.Message)
			return nil
		},
		Lost: func(lost, next uint64) error {
			fmt.Printf("-- %d records lost, continuing at %d\n", lost, next)
			return nil
		},
	}
}

// Run reads a ring directly, the way logctl tail --ring does.
func ExampleRun() {
	r, cleanup := exampleRing()
	defer cleanup()

	req := query.Request{N: new(int64(5)), Filter: query.Filter{Grep: "failed"}}
	end, err := query.Run(context.Background(), r, req, printer())
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("end: %s, resume after %d\n", end.Reason, end.Cursor)
	// Output:
	// 2 sshd: login failed for root
	// 4 sshd: login failed for bob
	// end: done, resume after 4
}

// A server on a local socket and a client: the latest 2 records, then the
// records after the first response's cursor (none yet). On a UNIX socket
// the kernel tells the server who connected: root and the ReaderUIDs
// (here, whoever runs the example) read every record, other users only
// the records their own processes sent.
func ExampleDial() {
	r, cleanup := exampleRing()
	defer cleanup()
	dir, err := os.MkdirTemp("", "query-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "query.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		panic(err)
	}
	srv := query.NewServer(r, query.Options{ReaderUIDs: []uint32{uint32(os.Getuid())}})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx := context.Background()
	c, err := query.Dial(ctx, query.UnixPrefix+sock, query.DialOptions{Client: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("ring holds %d..%d, access %s\n", c.Hello().Oldest, c.Hello().Head-1, c.Hello().Access)
	end, err := c.Query(ctx, query.Request{ID: 1, N: new(int64(2))}, printer())
	fmt.Printf("end: %+v %v\n", end, err)
	end, err = c.Query(ctx, query.Request{ID: 2, After: new(end.Cursor)}, printer())
	fmt.Printf("end: %+v %v\n", end, err)
	c.Close()

	srv.Shutdown(ctx)
	fmt.Println("serve:", <-served)
	// Output:
	// ring holds 1..4, access all
	// 3 sshd: listening
	// 4 sshd: login failed for bob
	// end: {ID:1 Cursor:4 Reason:done} <nil>
	// end: {ID:2 Cursor:4 Reason:done} <nil>
	// serve: <nil>
}
