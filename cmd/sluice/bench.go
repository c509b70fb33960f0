package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/bench"
)

// benchOptions are the load's shape, shared by the three bench modes.
type benchOptions struct {
	topic         string
	partitions    int32
	recordSize    int
	records       int64
	duration      time.Duration
	rate          float64
	acks          string
	compression   string
	linger        time.Duration
	producers     int
	consumers     int
	progress      bool
	progressEvery time.Duration
}

func (o *benchOptions) register(fs *pflag.FlagSet, defaultRate float64) {
	fs.StringVar(&o.topic, "topic", "sluice-bench", "topic to use; created with --partitions if missing")
	fs.Int32Var(&o.partitions, "partitions", 3, "partitions when the topic is created")
	// 1 KiB is the payload of the OpenMessaging Benchmark's standard
	// workloads, so figures compare with published ones.
	fs.IntVar(&o.recordSize, "record-size", 1024, "bytes per record value (random, incompressible)")
	fs.Int64Var(&o.records, "records", 0, "records to send or read (default 100000, or for e2e 10s of --rate, unless --duration is given)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (with --records: whichever comes first)")
	fs.Float64Var(&o.rate, "rate", defaultRate, "records per second in all, on a fixed schedule; 0 = as fast as possible")
	fs.StringVar(&o.acks, "acks", "all", "producer acks: all, 1 or 0")
	fs.StringVar(&o.compression, "compression", "none", "none, gzip, snappy, lz4 or zstd")
	// franz-go's own default, stated rather than inherited so a figure
	// says what it measured; 0 sends each batch at once, which is what a
	// latency figure should be taken at.
	fs.DurationVar(&o.linger, "linger", 10*time.Millisecond, "how long the producer waits to fill a batch (linger.ms); 0 sends at once")
	fs.IntVar(&o.producers, "producers", 1, "producer clients")
	fs.IntVar(&o.consumers, "consumers", 1, "consumer clients")
	fs.BoolVar(&o.progress, "progress", false, "print a progress line every second even when stderr is not a terminal")
	fs.DurationVar(&o.progressEvery, "progress-interval", time.Second, "time between progress lines")
	// Hidden: it exists so tests can see progress lines without waiting
	// a second for each.
	_ = fs.MarkHidden("progress-interval")
}

// check rejects a load that cannot run, as a usage error.
func (o *benchOptions) check(mode string) error {
	switch {
	case o.recordSize < 1:
		return usageErrorf("--record-size %d: want at least 1 byte", o.recordSize)
	// The e2e consumer reads the scheduled send time from the first eight
	// bytes of the value.
	case mode == "e2e" && o.recordSize < 8:
		return usageErrorf("--record-size %d: e2e needs at least 8 bytes to carry the send time", o.recordSize)
	case o.records < 0:
		return usageErrorf("--records %d: want a positive count", o.records)
	case o.duration < 0:
		return usageErrorf("--duration %v: want a positive duration", o.duration)
	case o.linger < 0:
		return usageErrorf("--linger %v: want 0 or a positive duration", o.linger)
	case o.rate < 0:
		return usageErrorf("--rate %v: want records per second, or 0 for as fast as possible", o.rate)
	case o.producers < 1 || o.consumers < 1:
		return usageErrorf("--producers and --consumers want at least 1")
	case o.partitions < 1:
		return usageErrorf("--partitions %d: want at least 1", o.partitions)
	case o.topic == "":
		return usageErrorf("--topic is empty")
	}
	if o.records == 0 && o.duration == 0 {
		// e2e runs at a fixed rate, so a count would make its length
		// depend on the rate; a time keeps the default run short.
		if mode == "e2e" {
			o.duration = 10 * time.Second
		} else {
			o.records = 100000
		}
	}
	if _, err := acksOptions(o.acks); err != nil {
		return err
	}
	_, err := compressionCodec(o.compression)
	return err
}

// producerOpts are the client options for the load's producers.
func (o *benchOptions) producerOpts() []kgo.Opt {
	acks, _ := acksOptions(o.acks)
	codec, _ := compressionCodec(o.compression)
	// Round robin, not sticky: the records have no key, and a benchmark
	// should load every partition evenly from the first second rather than
	// fill one batch per partition in turn.
	return append(acks, kgo.DefaultProduceTopic(o.topic), kgo.ProducerBatchCompression(codec),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(o.linger))
}

// benchStats is what a run has measured so far; the clients' callbacks
// write it from several goroutines. One mutex is enough: a callback holds
// it for a histogram increment, far less than a produce round trip, so it
// does not limit the load it measures.
type benchStats struct {
	mu       sync.Mutex
	hist     bench.Histogram
	records  int64
	bytes    int64
	errors   int64
	firstErr error
}

func (s *benchStats) ok(latency time.Duration, size int) {
	s.mu.Lock()
	s.hist.Record(latency)
	s.records++
	s.bytes += int64(size)
	s.mu.Unlock()
}

func (s *benchStats) fail(err error) {
	s.mu.Lock()
	s.errors++
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.mu.Unlock()
}

func (s *benchStats) snapshot() (records, bytes int64, p50, p99 time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records, s.bytes, s.hist.Quantile(0.5), s.hist.Quantile(0.99)
}

// benchSummary is the final report, and its --json form.
type benchSummary struct {
	Mode            string         `json:"mode"`
	Topic           string         `json:"topic"`
	Records         int64          `json:"records"`
	Bytes           int64          `json:"bytes"`
	Seconds         float64        `json:"seconds"`
	RecordsPerSec   float64        `json:"records_per_sec"`
	MBPerSec        float64        `json:"mb_per_sec"`
	Latency         benchLatency   `json:"latency_ms"`
	LatencyMeasures string         `json:"latency_measures"`
	Errors          int64          `json:"errors"`
	Rate            float64        `json:"rate"`
	Options         map[string]any `json:"options"`
}

type benchLatency struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// summarize turns the stats into the report. The options are echoed in
// it so that a saved --json result says how it was produced.
func summarize(mode string, o *benchOptions, s *benchStats, elapsed time.Duration, measures string) benchSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Milliseconds with microsecond precision: the unit of Kafka's
	// perf-test output, fine enough for a sub-millisecond p50 on a laptop.
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	secs := elapsed.Seconds()
	sum := benchSummary{
		Mode: mode, Topic: o.topic, Records: s.records, Bytes: s.bytes, Seconds: secs,
		Latency: benchLatency{
			P50: ms(s.hist.Quantile(0.5)), P95: ms(s.hist.Quantile(0.95)), P99: ms(s.hist.Quantile(0.99)),
			P999: ms(s.hist.Quantile(0.999)), Max: ms(s.hist.Max()),
		},
		LatencyMeasures: measures, Errors: s.errors, Rate: o.rate,
		Options: map[string]any{"record_size": o.recordSize, "partitions": o.partitions, "acks": o.acks,
			"compression": o.compression, "producers": o.producers, "consumers": o.consumers,
			"linger_ms": float64(o.linger.Microseconds()) / 1000},
	}
	// MB are 10^6 bytes. The guard keeps an instant run from dividing by
	// zero: +Inf cannot be encoded as JSON.
	if secs > 0 {
		sum.RecordsPerSec = float64(s.records) / secs
		sum.MBPerSec = float64(s.bytes) / secs / 1e6
	}
	return sum
}

func (sum benchSummary) print(w io.Writer) error {
	f := func(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	rows := [][]string{{sum.Mode, strconv.FormatInt(sum.Records, 10), f(sum.Seconds, 2), f(sum.RecordsPerSec, 0),
		f(sum.MBPerSec, 1), f(sum.Latency.P50, 2), f(sum.Latency.P95, 2), f(sum.Latency.P99, 2),
		f(sum.Latency.P999, 2), f(sum.Latency.Max, 2), strconv.FormatInt(sum.Errors, 10)}}
	if err := printTable(w, []string{"MODE", "RECORDS", "SECONDS", "records/s", "MB/s", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms", "ERRORS"}, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "latency: %s\n", sum.LatencyMeasures)
	return err
}

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput and latency: produce, consume, e2e",
		Long: "Load a cluster and measure it, like kafka-producer-perf-test and the\n" +
			"OpenMessaging Benchmark. With --rate the load follows a fixed schedule and\n" +
			"latency counts from each record's scheduled send time, so a stall shows up in\n" +
			"the tail instead of slowing the load down (no coordinated omission).",
		Example: "  sluice bench produce --records 1000000 --record-size 1024\n" +
			"  sluice bench produce --rate 5000 --duration 30s --json\n" +
			"  sluice bench consume --records 1000000 --consumers 2\n" +
			"  sluice bench e2e --rate 2000 --duration 20s",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	e := newClientEnv(cmd)
	cmd.AddCommand(newBenchModeCmd(e, "produce", 0), newBenchModeCmd(e, "consume", 0), newBenchModeCmd(e, "e2e", 1000))
	return cmd
}

var benchShort = map[string]string{
	"produce": "Produce records and measure throughput and acknowledgement latency",
	"consume": "Read records from the start of a topic and measure throughput",
	"e2e":     "Produce at a fixed rate and measure produce-to-consume latency",
}

func newBenchModeCmd(e *clientEnv, mode string, defaultRate float64) *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:     mode,
		Short:   benchShort[mode],
		Example: "  sluice bench " + mode + " --records 100000 --record-size 512 --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			if err := o.check(mode); err != nil {
				return err
			}
			sum, err := runBench(cmd, e, mode, &o)
			if err != nil {
				return err
			}
			if asJSON {
				err = printJSON(cmd.OutOrStdout(), sum)
			} else {
				err = sum.print(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if sum.Errors > 0 {
				return fmt.Errorf("%d records to topic %s failed", sum.Errors, o.topic)
			}
			return nil
		},
	}
	o.register(cmd.Flags(), defaultRate)
	return cmd
}

// runBench runs one mode and summarizes it. The clock starts after the
// topic exists, so creating it is not billed to the load; failed records
// are counted, not fatal, because a benchmark that stops at the first
// error hides how often errors happen.
func runBench(cmd *cobra.Command, e *clientEnv, mode string, o *benchOptions) (benchSummary, error) {
	ctx := cmd.Context()
	if err := ensureBenchTopic(ctx, e, o); err != nil {
		return benchSummary{}, err
	}
	var stats benchStats
	stop := startProgress(cmd.ErrOrStderr(), mode, o, &stats)
	start := time.Now()
	var measures string
	var err error
	switch mode {
	case "produce":
		measures = "time from each record's send (scheduled send with --rate) to its acknowledgement"
		err = benchProduce(ctx, e, o, &stats, nil)
	case "consume":
		measures = "time each poll waited for the broker's fetch response"
		// The consume run starts its own clock once the consumers have
		// joined and been assigned, so the join does not count as
		// throughput time.
		start, err = benchConsume(ctx, cmd.ErrOrStderr(), e, o, &stats)
	case "e2e":
		measures = "time from each record's scheduled send to its arrival at a consumer"
		err = benchEndToEnd(ctx, e, o, &stats)
	}
	elapsed := time.Since(start)
	stop()
	if err != nil {
		return benchSummary{}, err
	}
	sum := summarize(mode, o, &stats, elapsed, measures)
	if stats.firstErr != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "sluice: first failure producing to topic %s: %v\n", o.topic, stats.firstErr)
	}
	return sum, nil
}

// ensureBenchTopic creates the topic unless it exists.
func ensureBenchTopic(ctx context.Context, e *clientEnv, o *benchOptions) error {
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	rctx, cancel := e.requestContext(ctx)
	defer cancel()
	// Replication factor -1: the cluster's default, so a bench against a
	// three-node cluster measures replicated writes, as production would.
	resp, err := adm.CreateTopic(rctx, o.partitions, -1, nil, o.topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %q: %w", o.topic, err)
	}
	return nil
}

// startProgress prints a line every progressEvery to stderr when it is a
// terminal or --progress asks; the returned func stops it.
func startProgress(stderr io.Writer, mode string, o *benchOptions, s *benchStats) func() {
	// Progress lines are for a person watching; in CI logs and pipes
	// they would be noise around the summary, unless asked for.
	if !o.progress && !isTerminal(stderr) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(o.progressEvery)
		defer tick.Stop()
		var lastRecords, lastBytes int64
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				// Rates over the last interval, not since the start: a
				// stall shows at once instead of being averaged away.
				records, bytes, p50, p99 := s.snapshot()
				secs := now.Sub(last).Seconds()
				fmt.Fprintf(stderr, "%s: %.0f records/s, %.1f MB/s, p50 %.2f ms, p99 %.2f ms (%d records)\n", mode,
					float64(records-lastRecords)/secs, float64(bytes-lastBytes)/secs/1e6,
					float64(p50.Microseconds())/1000, float64(p99.Microseconds())/1000, records)
				lastRecords, lastBytes, last = records, bytes, now
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// isTerminal reports whether w is a character device. The check is by
// file mode, not by a terminal library, so the CLI takes no dependency
// for one decision; a pipe or a file reads as not a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// randomPayload is n incompressible bytes. Random, so that --compression
// measures the codec's cost without flattering throughput: real payloads
// compress somewhere between this and a run of zeros.
func randomPayload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
