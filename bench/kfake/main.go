// Command kfake runs franz-go's in-memory fake Kafka cluster (kfake) as a
// process, the reference bench/compare.sh measures Sluice against. It is in
// its own module so Sluice's binary never depends on it.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	port := flag.Int("port", 0, "port for the broker on 127.0.0.1; 0 picks a free one")
	partitions := flag.Int("partitions", 3, "partitions of auto-created topics")
	flag.Parse()
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(*partitions)}
	if *port != 0 {
		opts = append(opts, kfake.Ports(*port))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		log.Fatalf("kfake: %v", err)
	}
	defer c.Close()
	// The line compare.sh waits for, as `sluice serve` prints it.
	fmt.Fprintf(os.Stderr, "kfake: accepting Kafka clients on %s\n", c.ListenAddrs()[0])
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	<-stop
}
