//go:build linux

// Command qbench is the query benchmarks' helper (bench/query/run.sh,
// bench/abuse/run.sh):
//
//	qbench fill    -socket PATH -ring PATH -n N [-senders K] [-size BYTES]
//	qbench time    [-runs R] [-warmup W] [-records N] [-devnull] -- COMMAND [ARG...] [::: COMMAND [ARG...]]...
//	qbench latency -socket PATH -logctl BIN [-rate R] [-n N] -- LOGCTL-SOURCE-FLAGS...
//	qbench stall   -socket PATH -ring PATH -addr HOST:PORT [-n N] [-senders K] [-idle C] [-rounds R]
//	qbench abuse   -socket PATH -ring PATH -addr HOST:PORT -logctl BIN [-pid PID] [-n N] [-senders K] [-idle C]
//	               [-half-open C] [-slowloris C] [-stalled C] [-tail-n N] [-tails K] [-tail-every D] [-rounds R]
//	               [-flood C] [-token-file FILE] [-local PATH [-hold K] [-hold-uid UID]]
//	qbench flood   -addr HOST:PORT -conns C   (run by abuse: holds C connections that never say hello)
//
// Each prints one JSON object on stdout (time: one per command); durations
// are in microseconds. See bench/query/run.sh for what each measures
// (abuse: bench/abuse/run.sh).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

func main() {
	cmds := map[string]func(args []string) (any, error){
		"fill":    runFill,
		"time":    runTime,
		"latency": runLatency,
		"stall":   runStall,
		"abuse":   runAbuse,
		"flood":   runFlood,
	}
	if len(os.Args) < 2 || cmds[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: qbench fill|time|latency|stall|abuse|flood [flags]")
		os.Exit(2)
	}
	res, err := cmds[os.Args[1]](os.Args[2:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "qbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	if m, ok := res.(multi); ok {
		for _, r := range m {
			out, _ := json.Marshal(r)
			fmt.Println(string(out))
		}
		return
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// summary describes a sample of durations, in microseconds.
type summary struct {
	N      int     `json:"n"`
	Min    float64 `json:"min_us"`
	Median float64 `json:"p50_us"`
	P90    float64 `json:"p90_us"`
	P99    float64 `json:"p99_us"`
	P999   float64 `json:"p999_us,omitempty"`
	Max    float64 `json:"max_us"`
}

// summarize sorts d and returns its order statistics (nearest rank).
func summarize(d []time.Duration) summary {
	if len(d) == 0 {
		return summary{}
	}
	slices.Sort(d)
	q := func(p float64) float64 {
		i := int(p*float64(len(d)) + 0.5)
		i = min(max(i-1, 0), len(d)-1)
		return us(d[i])
	}
	s := summary{N: len(d), Min: us(d[0]), Median: q(0.50), P90: q(0.90), P99: q(0.99), Max: us(d[len(d)-1])}
	if len(d) >= 1000 {
		s.P999 = q(0.999)
	}
	return s
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
