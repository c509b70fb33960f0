package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type spreadOptions struct {
	common
	layouts  string
	duration time.Duration
	size     int
	runs     int
	brokers  string
}

// runSpread measures produce throughput (1 KiB records, acks=all, as
// `sluice bench produce` sends them) into a few partitions and spread over
// many topics and partitions, alternating runs on one node so machine noise
// hits both alike.
func runSpread(args []string) error {
	var o spreadOptions
	fs := flag.NewFlagSet("spread", flag.ExitOnError)
	o.register(fs)
	fs.StringVar(&o.layouts, "layouts", "1x8,100x100", "topics x partitions per topic, comma-separated")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each run")
	fs.IntVar(&o.size, "record-size", 1024, "bytes per record value")
	fs.IntVar(&o.runs, "runs", 3, "runs of each layout")
	// Against bench/nullbroker this measures the load generator's own
	// ceiling for each layout, the fair figure to compare Sluice with.
	fs.StringVar(&o.brokers, "brokers", "", "HOST:PORT of a running broker to measure instead of starting sluice (--sluice, --dir and --set are then unused)")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var r results
	defer r.print()
	addr := o.brokers
	if addr == "" {
		dir, cleanup, err := tempDir(&o.common, "sluice-spread-")
		if err != nil {
			return err
		}
		defer cleanup()
		n, err := o.start(ctx, filepath.Join(dir, "data"), filepath.Join(dir, "node.log"))
		if err != nil {
			return err
		}
		defer func() { n.kill() }()
		addr = n.addr
	}
	type layout struct {
		name   string
		topics []string
	}
	var layouts []layout
	for i, spec := range splitList(o.layouts) {
		var topics, partitions int
		if _, err := fmt.Sscanf(spec, "%dx%d", &topics, &partitions); err != nil {
			return fmt.Errorf("--layouts %q: want TOPICSxPARTITIONS", spec)
		}
		l := layout{name: spec}
		for t := range topics {
			l.topics = append(l.topics, fmt.Sprintf("spread%d-%03d", i, t))
		}
		if err := createTopics(ctx, addr, l.topics, partitions); err != nil {
			return err
		}
		layouts = append(layouts, l)
	}
	for run := 1; run <= o.runs; run++ {
		for _, l := range layouts {
			mbs, err := produceFor(ctx, addr, l.topics, o.size, o.duration)
			if err != nil {
				return err
			}
			r.add(fmt.Sprintf("produce %s run %d", l.name, run), mbs, "MB/s")
		}
	}
	return nil
}

func createTopics(ctx context.Context, addr string, topics []string, partitions int) error {
	cl, err := newClient(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for i := 0; i < len(topics); i += 10 {
		resp, err := adm.CreateTopics(ctx, int32(partitions), 1, nil, topics[i:min(i+10, len(topics))]...)
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		// A broker given with --brokers may have them from an earlier run.
		for _, t := range resp {
			if t.Err != nil && !errors.Is(t.Err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", t.Topic, t.Err)
			}
		}
	}
	return waitAllPartitions(ctx, adm, topics, len(topics)*partitions)
}

// produceFor sends records as fast as acks=all allows for d, cycling over
// the topics (round robin over each topic's partitions), and returns MB/s
// acknowledged.
func produceFor(ctx context.Context, addr string, topics []string, size int, d time.Duration) (float64, error) {
	cl, err := newClient(addr, kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	value := make([]byte, size)
	rand.Read(value) // incompressible, as sluice bench produce sends
	var acked atomic.Int64
	var firstErr atomic.Value
	start := time.Now()
	for i := 0; time.Since(start) < d; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topics[i%len(topics)], Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				firstErr.CompareAndSwap(nil, err)
				return
			}
			acked.Add(int64(size))
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return 0, err
	}
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, fmt.Errorf("produce: %w", err)
	}
	return float64(acked.Load()) / time.Since(start).Seconds() / 1e6, nil
}
