package main

import (
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type bigLogOptions struct {
	common
	sizes        string
	partitions   int
	segmentBytes int64
}

// runBigLog fills a topic to each size in turn (adding to what the last
// step wrote), then restarts after kill -9 and after a clean stop, timing
// each restart and counting the bytes the restarted process read.
func runBigLog(args []string) error {
	var o bigLogOptions
	fs := flag.NewFlagSet("biglog", flag.ExitOnError)
	o.register(fs)
	fs.StringVar(&o.sizes, "gib", "1", "comma-separated data sizes in GiB, ascending")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the topic")
	fs.Int64Var(&o.segmentBytes, "segment-bytes", 1<<30, "log.segment.bytes")
	fs.Parse(args)
	o.sets = append(o.sets, "log.segment.bytes="+strconv.FormatInt(o.segmentBytes, 10))
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	dir, cleanup, err := tempDir(&o.common, "sluice-biglog-")
	if err != nil {
		return err
	}
	defer cleanup()
	data := filepath.Join(dir, "data")
	logPath := filepath.Join(dir, "node.log")
	var r results
	defer r.print()
	n, err := o.start(ctx, data, logPath)
	if err != nil {
		return err
	}
	defer func() { n.kill() }()
	cl, err := newClient(n.addr)
	if err != nil {
		return err
	}
	const topic = "biglog"
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, int32(o.partitions), 1, nil, topic); err != nil {
		return err
	}
	cl.Close()
	var written int64
	for _, s := range strings.Split(o.sizes, ",") {
		gib, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("--gib %q: %w", s, err)
		}
		target := int64(gib * (1 << 30))
		t0 := time.Now()
		if err := fill(ctx, n.addr, topic, target-written); err != nil {
			return err
		}
		written = target
		label := s + " GiB"
		r.add(label+": fill", time.Since(t0), "")
		r.add(label+": data on disk", dataSize(data)>>20, "MiB")
		// kill -9 right after the last acknowledged write: the worst case
		// for a recovery-point checkpoint written on an interval.
		n.kill()
		for _, what := range []string{"kill -9", "clean stop"} {
			if n, err = o.start(ctx, data, logPath); err != nil {
				return err
			}
			if cl, err = newClient(n.addr); err != nil {
				return err
			}
			if err := waitAllPartitions(ctx, kadm.NewClient(cl), []string{topic}, o.partitions); err != nil {
				return err
			}
			ready := time.Since(n.started)
			cl.Close()
			rchar, readBytes := procIO(n.pid())
			r.add(label+": start after "+what, ready, "")
			if !n.sessionWait.IsZero() {
				r.add(label+": start after "+what+": logs open, session wait begins", n.sessionWait.Sub(n.started), "")
			}
			r.add(label+": bytes read by start after "+what, rchar>>20, "MiB")
			r.add(label+": disk reads by start after "+what, readBytes>>20, "MiB")
			if what == "kill -9" {
				if _, err := n.stop(time.Minute); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// fill produces bytes of 1 KiB records spread over the topic's partitions.
func fill(ctx context.Context, addr, topic string, bytes int64) error {
	// Uncompressed random values: kgo compresses with snappy by default,
	// and zeros would shrink the data on disk to a tenth.
	cl, err := newClient(addr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(1<<20),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		return err
	}
	defer cl.Close()
	value := make([]byte, 1024)
	rand.Read(value)
	errs := make(chan error, 1)
	for sent := int64(0); sent < bytes; sent += int64(len(value)) {
		cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errs <- err:
				default:
				}
			}
		})
		select {
		case err := <-errs:
			return fmt.Errorf("produce: %w", err)
		default:
		}
	}
	return cl.Flush(ctx)
}
