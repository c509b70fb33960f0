package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"sync"
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
	profile  string
	buffered int
	inflight int
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
	fs.IntVar(&o.buffered, "max-buffered-records", 10000, "the client's kgo.MaxBufferedRecords (franz-go's default 10,000 is about one record per partition in flight at 10,000 partitions)")
	// franz-go keeps one produce request in flight per broker when it is
	// idempotent; the Java producer keeps up to five. More than one needs
	// idempotence off, as franz-go refuses the combination.
	fs.IntVar(&o.inflight, "inflight", 1, "produce requests in flight per broker; above 1 the client runs without idempotence (acks=all still)")
	fs.StringVar(&o.profile, "profile", "", "save the node's CPU profile and goroutines during each layout's last run to FILE-LAYOUT.cpu and .goroutines (needs --set http.pprof.enabled=true)")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var r results
	defer r.print()
	addr, httpAddr := o.brokers, ""
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
		addr, httpAddr = n.addr, n.http
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
		if err := warmUp(ctx, addr, l.topics, partitions); err != nil {
			return err
		}
		layouts = append(layouts, l)
	}
	for run := 1; run <= o.runs; run++ {
		for _, l := range layouts {
			var profiled sync.WaitGroup
			if o.profile != "" && httpAddr != "" && run == o.runs {
				profiled.Go(func() { profileRun(httpAddr, o.profile+"-"+l.name, o.duration) })
			}
			mbs, err := produceFor(ctx, addr, l.topics, o.size, o.buffered, o.inflight, o.duration)
			profiled.Wait()
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

// profileRun saves the node's CPU profile over most of a run and its
// goroutines halfway through.
func profileRun(httpAddr, path string, d time.Duration) {
	var wg sync.WaitGroup
	wg.Go(func() {
		scrapeToFile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", httpAddr, max(int(d.Seconds())-1, 1)), path+".cpu")
	})
	time.Sleep(d / 2)
	scrapeToFile("http://"+httpAddr+"/debug/pprof/goroutine?debug=1", path+".goroutines")
	wg.Wait()
}

// warmUp appends one record to every partition, unmeasured: a
// partition's first append writes its leader epoch checkpoint (a few
// fsyncs), a one-time cost that would otherwise land in the first run of
// a layout with many partitions only.
func warmUp(ctx context.Context, addr string, topics []string, partitions int) error {
	cl, err := newClient(addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer cl.Close()
	var firstErr atomic.Value
	for _, t := range topics {
		for p := range partitions {
			cl.Produce(ctx, &kgo.Record{Topic: t, Partition: int32(p), Value: []byte("warm-up")}, func(_ *kgo.Record, err error) {
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			})
		}
	}
	err = cl.Flush(ctx)
	if e, _ := firstErr.Load().(error); e != nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return nil
}

// produceFor sends records as fast as acks=all allows for d, cycling over
// the topics (round robin over each topic's partitions), and returns MB/s
// acknowledged.
func produceFor(ctx context.Context, addr string, topics []string, size, buffered, inflight int, d time.Duration) (float64, error) {
	opts := []kgo.Opt{kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(buffered)}
	if inflight > 1 {
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(inflight))
	}
	cl, err := newClient(addr, opts...)
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
