// Command kfaked runs franz-go's kfake, an in-process Kafka cluster that
// speaks the real broker protocol, as a process of its own, so that tests
// and benchmarks can freeze it (SIGSTOP), kill it and start it again on
// the same ports and data directory.
//
//	kfaked [-brokers 3] [-ports P1,P2,P3] [-topic logs] [-partitions 3] [-data DIR] [-sync]
//
// When it listens it prints one JSON line on stdout, {"brokers":["HOST:PORT",...]}.
// It stops cleanly on SIGTERM or SIGINT, writing its state to -data. With
// -sync every produced batch is fsynced before it is acknowledged, so that
// a SIGKILL loses nothing acknowledged. It is a test and benchmark tool,
// never part of collectord.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	brokers := flag.Int("brokers", 3, "number of brokers")
	ports := flag.String("ports", "", "comma-separated ports, one per broker (default: any free)")
	topic := flag.String("topic", "logs", "topic to create")
	partitions := flag.Int("partitions", 3, "partitions of the topic")
	data := flag.String("data", "", "data directory: state is kept and reloaded across restarts")
	sync := flag.Bool("sync", false, "fsync every produced batch before acknowledging it")
	flag.Parse()

	opts := []kfake.Opt{kfake.NumBrokers(*brokers), kfake.SeedTopics(int32(*partitions), *topic)}
	if *ports != "" {
		var ps []int
		for p := range strings.SplitSeq(*ports, ",") {
			n, err := strconv.Atoi(p)
			if err != nil {
				fail(fmt.Errorf("-ports %q: %w", *ports, err))
			}
			ps = append(ps, n)
		}
		opts = append(opts, kfake.Ports(ps...))
	}
	if *data != "" {
		opts = append(opts, kfake.DataDir(*data))
	}
	if *sync {
		opts = append(opts, kfake.SyncWrites())
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fail(err)
	}
	line, _ := json.Marshal(map[string][]string{"brokers": c.ListenAddrs()})
	fmt.Println(string(line))
	<-sigs
	c.Close()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kfaked:", err)
	os.Exit(1)
}
