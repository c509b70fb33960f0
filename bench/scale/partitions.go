package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type partitionsOptions struct {
	common
	topics      int
	partitions  int
	records     int
	idle        time.Duration
	profile     string
	connections int
}

// runPartitions creates topics × partitions with a few records each, then
// measures the idle node, a clean restart and a restart after kill -9.
//
// long: one straight-line script of measurement steps; splitting it would
// only scatter the order they must run in.
func runPartitions(args []string) error {
	var o partitionsOptions
	fs := flag.NewFlagSet("partitions", flag.ExitOnError)
	o.register(fs)
	fs.IntVar(&o.topics, "topics", 100, "topics to create")
	fs.IntVar(&o.partitions, "partitions", 100, "partitions per topic")
	fs.IntVar(&o.records, "records", 3, "records produced to each partition")
	fs.DurationVar(&o.idle, "idle", 10*time.Second, "how long idle CPU is measured")
	fs.StringVar(&o.profile, "profile", "", "save pprof profiles of topic creation to FILE.cpu and FILE.goroutines (needs --set http.pprof.enabled=true)")
	fs.IntVar(&o.connections, "connections", 0, "after the idle figures, open this many idle client connections and count descriptors again, then produce to every partition once more")
	fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	dir, cleanup, err := tempDir(&o.common, "sluice-scale-")
	if err != nil {
		return err
	}
	defer cleanup()
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "node.log")
	total := o.topics * o.partitions
	var r results
	defer r.print()
	r.add("partitions", total, "")
	if o.nofile > 0 {
		r.add("descriptor limit (prlimit --nofile)", o.nofile, "")
	}

	n, err := o.start(ctx, data, logPath)
	if err != nil {
		return err
	}
	defer func() { n.kill() }()
	time.Sleep(2 * time.Second)
	_, rss0, _ := procStat(n.pid())
	r.add("rss empty node", rss0>>10, "KiB")

	topics := make([]string, o.topics)
	for i := range topics {
		topics[i] = fmt.Sprintf("scale-%03d", i)
	}
	cl, err := newClient(n.addr)
	if err != nil {
		return err
	}
	adm := kadm.NewClient(cl)
	if o.profile != "" {
		// A CPU profile of the node while the partitions open.
		go scrapeToFile("http://"+n.http+"/debug/pprof/profile?seconds=5", o.profile+".cpu")
		go func() {
			time.Sleep(2 * time.Second)
			scrapeToFile("http://"+n.http+"/debug/pprof/goroutine?debug=1", o.profile+".goroutines")
		}()
	}
	t0 := time.Now()
	for i := 0; i < len(topics); i += 10 {
		resp, err := adm.CreateTopics(ctx, int32(o.partitions), 1, nil, topics[i:min(i+10, len(topics))]...)
		if err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
		if err := resp.Error(); err != nil {
			return fmt.Errorf("create topics: %w", err)
		}
	}
	r.add("create topics", time.Since(t0), "")
	if err := waitAllPartitions(ctx, adm, topics, total); err != nil {
		return err
	}
	r.add("create until ListOffsets answers all", time.Since(t0), "")
	t1 := time.Now()
	if _, err := adm.DescribeAllLogDirs(ctx, nil); err != nil {
		return fmt.Errorf("describe log dirs: %w", err)
	}
	r.add("DescribeLogDirs after create", time.Since(t1), "")
	cl.Close()

	t0 = time.Now()
	if err := produceEach(ctx, n.addr, topics, o.partitions, o.records); err != nil {
		return err
	}
	r.add(fmt.Sprintf("produce %d records to each partition", o.records), time.Since(t0), "")

	cl, err = newClient(n.addr)
	if err != nil {
		return err
	}
	defer func() { cl.Close() }()
	med, mx, err := timeRequests(10, metadataAll(ctx, cl))
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	r.add("Metadata all topics p50", med, "")
	r.add("Metadata all topics max", mx, "")
	var size int
	med, mx, err = timeRequests(5, func() error { var err error; size, err = scrape("http://" + n.http + "/metrics"); return err })
	if err != nil {
		return fmt.Errorf("scrape: %w", err)
	}
	r.add("/metrics scrape p50", med, "")
	r.add("/metrics scrape max", mx, "")
	r.add("/metrics size", size>>10, "KiB")
	cl.Close()

	measureIdle(&r, n, o.idle, rss0, total)
	if o.connections > 0 {
		if err := measureWithConnections(ctx, &r, n, o.connections, topics, o.partitions); err != nil {
			return err
		}
	}

	d, err := n.stop(time.Minute)
	if err != nil {
		return err
	}
	r.add("clean stop", d, "")
	for _, kill := range []bool{false, true} {
		what := "clean stop"
		if kill {
			what = "kill -9"
		}
		if n, err = o.start(ctx, data, logPath); err != nil {
			return err
		}
		r.add("start after "+what+": serving", n.ready.Sub(n.started), "")
		if !n.sessionWait.IsZero() {
			r.add("start after "+what+": logs open, session wait begins", n.sessionWait.Sub(n.started), "")
		}
		if cl, err = newClient(n.addr); err != nil {
			return err
		}
		if err := waitAllPartitions(ctx, kadm.NewClient(cl), topics, total); err != nil {
			return err
		}
		r.add("start after "+what+": all partitions answer", time.Since(n.started), "")
		cl.Close()
		r.add("open descriptors after "+what, openFDs(n.pid()), "")
		if !kill {
			time.Sleep(time.Second)
			n.kill()
		}
	}
	logText, _ := os.ReadFile(logPath)
	r.add("'too many open files' in the log", strings.Count(string(logText), "too many open files"), "")
	return nil
}

// measureIdle samples CPU over an idle period and the resident memory of
// the loaded node.
func measureIdle(r *results, n *node, idle time.Duration, rss0 int64, partitions int) {
	cpu0, _, _ := procStat(n.pid())
	t0 := time.Now()
	time.Sleep(idle)
	cpu1, rss, _ := procStat(n.pid())
	r.add("idle CPU (share of one core)", float64(cpu1-cpu0)/float64(time.Since(t0))*100, "%")
	r.add("rss loaded", rss>>10, "KiB")
	r.add("rss per partition", float64(rss-rss0)/float64(partitions)/1024, "KiB")
	r.add("open descriptors", openFDs(n.pid()), "")
}

// measureWithConnections opens idle client connections, which share the
// node's descriptor limit with its segment files, and counts the node's
// descriptors once they are open and after a produce to every partition
// (which reopens segment files the node closed to make room).
func measureWithConnections(ctx context.Context, r *results, n *node, count int, topics []string, partitions int) error {
	var d net.Dialer
	conns := make([]net.Conn, 0, count)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range count {
		c, err := d.DialContext(ctx, "tcp", n.addr)
		if err != nil {
			return fmt.Errorf("idle connection %d: %w", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	time.Sleep(2 * time.Second) // the node resizes its file budget on its own goroutine
	r.add(fmt.Sprintf("open descriptors with %d idle connections", count), openFDs(n.pid()), "")
	t0 := time.Now()
	if err := produceEach(ctx, n.addr, topics, partitions, 1); err != nil {
		return err
	}
	r.add(fmt.Sprintf("produce 1 record to each partition with %d idle connections", count), time.Since(t0), "")
	r.add(fmt.Sprintf("open descriptors after that produce, %d idle connections", count), openFDs(n.pid()), "")
	return nil
}

// produceEach writes records to every partition of every topic, a few
// batches at a time, acks=all.
func produceEach(ctx context.Context, addr string, topics []string, partitions, records int) error {
	cl, err := newClient(addr, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, 100)
	errs := make(chan error, 1)
	for _, t := range topics {
		for p := 0; p < partitions; p++ {
			for i := 0; i < records; i++ {
				cl.Produce(ctx, &kgo.Record{Topic: t, Partition: int32(p), Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
				})
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errs:
		return fmt.Errorf("produce: %w", err)
	default:
		return nil
	}
}
