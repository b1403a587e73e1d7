package proctest

import (
	"os"
	"testing"
)

func TestOpenFDs(t *testing.T) {
	before := OpenFDs(t)
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := OpenFDs(t); got != before+1 {
		t.Errorf("with one more file open: %d descriptors, want %d", got, before+1)
	}
	f.Close()
	if got := OpenFDs(t); got != before {
		t.Errorf("after closing it: %d descriptors, want %d", got, before)
	}
}
