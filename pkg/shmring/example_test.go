//go:build linux

package shmring_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/collectord/collectord/pkg/shmring"
)

func Example() {
	dir, _ := os.MkdirTemp("", "ring")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "ring")

	w, err := shmring.OpenWriter(path, shmring.Options{Size: shmring.MinSize})
	if err != nil {
		panic(err)
	}
	defer w.Close()
	for _, msg := range []string{"one", "two", "three"} {
		w.Add(0, []byte(msg)) // batched: one commit, one wake
	}
	w.Publish()

	r, err := shmring.OpenReader(path) // read-only; may be another process
	if err != nil {
		panic(err)
	}
	defer r.Close()
	c := r.Cursor(r.Latest(2))
	for {
		rec, lost, err := c.Next()
		if errors.Is(err, shmring.ErrNoRecord) {
			break
		}
		fmt.Println(rec.Seq, string(rec.Payload), lost)
	}
	// Block until the writer publishes past the cursor (or ctx ends).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println(r.Wait(ctx, c.Pos()))
	// Output:
	// 2 two 0
	// 3 three 0
	// context canceled
}
