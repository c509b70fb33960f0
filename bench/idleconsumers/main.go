// Command idleconsumers measures what long-polling consumers of idle
// partitions cost a broker: it starts N franz-go consumers (fetch max
// wait 500 ms, Kafka's default), each assigned its own partition of a topic nobody
// produces to, lets them settle, then reads the broker's CPU time from
// /proc/PID/stat over a window and prints it as a share of one core.
//
// Usage: idleconsumers -brokers 127.0.0.1:9092 -pid 1234 [-consumers 1000] [-window 30s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "bootstrap address")
	pid := flag.Int("pid", 0, "the broker's process id, whose CPU time is read from /proc")
	consumers := flag.Int("consumers", 1000, "consumer clients, one partition each")
	topic := flag.String("topic", "idle-consumers", "topic, created with one partition per consumer")
	settle := flag.Duration("settle", 5*time.Second, "time for the consumers to connect before measuring")
	window := flag.Duration("window", 30*time.Second, "measurement window")
	// Kafka's fetch.max.wait.ms default; franz-go's own is 5 s, which
	// would make an idle consumer ten times cheaper than a Java one.
	maxWait := flag.Duration("max-wait", 500*time.Millisecond, "consumers' fetch max wait")
	flag.Parse()
	if *pid == 0 {
		log.Fatal("idleconsumers: -pid is required")
	}
	ctx := context.Background()
	admin, err := kgo.NewClient(kgo.SeedBrokers(*brokers))
	if err != nil {
		log.Fatal(err)
	}
	resp, err := kadm.NewClient(admin).CreateTopic(ctx, int32(*consumers), 1, nil, *topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		log.Fatalf("idleconsumers: create topic: %v", err)
	}
	admin.Close()
	clients := make([]*kgo.Client, *consumers)
	for i := range clients {
		cl, err := kgo.NewClient(kgo.SeedBrokers(*brokers), kgo.FetchMaxWait(*maxWait),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{*topic: {int32(i): kgo.NewOffset().AtEnd()}}))
		if err != nil {
			log.Fatal(err)
		}
		clients[i] = cl
		go func() {
			for {
				fetches := cl.PollFetches(ctx)
				if fetches.IsClientClosed() {
					return
				}
			}
		}()
	}
	defer func() {
		for _, cl := range clients {
			cl.Close()
		}
	}()
	time.Sleep(*settle)
	before, err := cpuTime(*pid)
	if err != nil {
		log.Fatal(err)
	}
	start := time.Now()
	time.Sleep(*window)
	after, err := cpuTime(*pid)
	if err != nil {
		log.Fatal(err)
	}
	elapsed := time.Since(start)
	fmt.Printf("%d idle long-polling consumers (max wait %v): broker CPU %.2f%% of one core over %v (%v of CPU)\n",
		*consumers, *maxWait, 100*(after-before).Seconds()/elapsed.Seconds(), elapsed.Round(time.Second), after-before)
}

// cpuTime is the process's user plus system time, from /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command (which may hold spaces) start after ")".
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fields))
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	// Clock ticks: USER_HZ is 100 on Linux.
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
