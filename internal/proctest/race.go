//go:build race

package proctest

// Race reports whether the test binary was built with the race detector
// (go test -race). The runtime has no API for it; a build tag does.
const Race = true
