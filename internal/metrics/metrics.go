// Package metrics keeps the broker's Prometheus metrics and renders them
// in the Prometheus text format, with Kafka's metric names where Kafka
// has one (its JMX names as the Prometheus JMX exporter spells them).
//
// Two kinds of metric, by cost:
//   - counters on the hot path (records and bytes per topic, requests,
//     fsyncs, ISR changes) are atomic adds on values resolved once, so a
//     produce or fetch pays no lookup that allocates;
//   - everything that grows with partitions, groups or the metadata (log
//     sizes, under-replicated and offline partitions, consumer lag, the
//     Raft state) is read from the running node only when scraped, by a
//     Collector walking a State, so 10,000 idle partitions cost nothing
//     between scrapes.
//
// The package is a leaf: it knows no Sluice types; the node adapts its
// components to State.
package metrics

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"
)

// Options configure New.
type Options struct {
	// APIKeys names every API key the broker serves (Produce, Fetch, ...),
	// the request label of the request metrics.
	APIKeys map[int16]string
	// State is read at each scrape; nil exports only the counters.
	State State
	// RefusedConnections reads the connections refused at accept, by
	// reason, at each scrape; nil exports none.
	RefusedConnections func() map[string]int64
	// SharedSyncs reads, at each scrape, what the log directory's shared
	// syncs did (log.flush.shared.sync); ok is false before the logs are
	// open. Nil exports none.
	SharedSyncs func() (s SharedSyncCounts, ok bool)
}

// SharedSyncCounts are the running totals of the logs' shared syncs.
type SharedSyncCounts struct {
	SyncFS        int64 // syncfs calls
	EarlySyncFS   int64 // of which started while a produce was still writing
	CoveredRounds int64 // append rounds those calls made durable
	OwnSyncs      int64 // rounds that fdatasynced their own file instead
	// The write-ahead journal's (log.flush.journal), all zero without it.
	JournalSyncs, JournalRecords, JournalFull, JournalCheckpoints int64
	// WritebackBytes is what the journal's write-back hints handed to
	// the kernel; WritebackRefused the hints refused or dropped.
	WritebackBytes, WritebackRefused int64
}

// Registry is one node's metrics.
type Registry struct {
	reg     *prometheus.Registry
	state   *stateWriter  // nil without a State
	scrapes chan struct{} // a slot per scrape in flight

	// Requests are counted, timed and checked for error codes where
	// requests are dispatched.
	Requests *Requests
	// Topics counts records and bytes in and out per topic.
	Topics *Topics
	// LogFlush observes each fsync of a partition log, in seconds.
	LogFlush prometheus.Histogram
	// ISRShrinks and ISRExpands count ISR changes committed for
	// partitions this node leads.
	ISRShrinks, ISRExpands prometheus.Counter
	// QuotaThrottles counts throttled responses by quota key.
	QuotaThrottles *prometheus.CounterVec
	// Cleaner is what the log cleaner's cleans did.
	Cleaner Cleaner
}

// Cleaner holds the log cleaner's metrics: Kafka's LogCleaner gauges, set
// by each clean that rewrote segments, and totals of its work.
type Cleaner struct {
	CleanTimeSecs, RecopyPercent, BufferUtilizationPercent prometheus.Gauge
	BytesRead, BytesWritten, RecordsRemoved                prometheus.Counter
}

func newCleaner() Cleaner {
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
	}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	return Cleaner{
		CleanTimeSecs: gauge("kafka_log_logcleaner_max_clean_time_secs", "Seconds the last clean of a compacted log took."),
		RecopyPercent: gauge("kafka_log_logcleaner_cleaner_recopy_percent", "Bytes the last clean wrote, as a percentage of the bytes it read."),
		BufferUtilizationPercent: gauge("kafka_log_logcleaner_max_buffer_utilization_percent",
			"How full the last clean's offset map was; 100 means the dirty range had more keys than log.cleaner.dedupe.buffer.size holds."),
		BytesRead:      counter("sluice_log_cleaner_bytes_read_total", "Bytes of segments the cleaner read and rewrote."),
		BytesWritten:   counter("sluice_log_cleaner_bytes_written_total", "Bytes of cleaned segments the cleaner wrote."),
		RecordsRemoved: counter("sluice_log_cleaner_records_removed_total", "Records compaction removed (superseded, expired tombstones, keyless)."),
	}
}

func (c Cleaner) collectors() []prometheus.Collector {
	return []prometheus.Collector{c.CleanTimeSecs, c.RecopyPercent, c.BufferUtilizationPercent, c.BytesRead, c.BytesWritten, c.RecordsRemoved}
}

// flushBuckets span a page-cache fsync on NVMe (~50µs) to a stalled disk.
var flushBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}

// New returns a registry with the node's metrics and Go's runtime and
// process metrics.
func New(opts Options) *Registry {
	r := &Registry{
		reg:      prometheus.NewRegistry(),
		Requests: newRequests(opts.APIKeys),
		Topics:   newTopics(),
		LogFlush: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kafka_log_logflushstats_logflushtime_seconds",
			Help:    "Time of one fsync of a partition log segment (Kafka's LogFlushStats LogFlushRateAndTimeMs, in seconds).",
			Buckets: flushBuckets,
		}),
		ISRShrinks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_replicamanager_isrshrinks_total",
			Help: "ISR shrinks committed for partitions this node leads.",
		}),
		ISRExpands: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_replicamanager_isrexpands_total",
			Help: "ISR expansions committed for partitions this node leads.",
		}),
		QuotaThrottles: newQuotaThrottles(),
	}
	r.reg.MustRegister(r.QuotaThrottles)
	if opts.RefusedConnections != nil {
		r.reg.MustRegister(newRefusedCollector(opts.RefusedConnections))
	}
	if opts.SharedSyncs != nil {
		r.reg.MustRegister(sharedSyncCounters(opts.SharedSyncs)...)
	}
	r.Cleaner = newCleaner()
	r.reg.MustRegister(r.Cleaner.collectors()...)
	r.reg.MustRegister(r.Requests, r.Topics, r.LogFlush, r.ISRShrinks, r.ISRExpands,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if opts.State != nil {
		r.state = newStateWriter(opts.State)
	}
	r.scrapes = make(chan struct{}, maxConcurrentScrapes)
	return r
}

// maxConcurrentScrapes bounds scrapes in flight (more get 503): each walks
// every partition, so an impatient scraper's retries must not pile up;
// two Prometheus servers of an HA pair still fit.
const maxConcurrentScrapes = 4

// Handler serves the metrics in the Prometheus text format (0.0.4, which
// every scraper accepts): the registry's families, then the State's,
// written by hand (see stateWriter).
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		select {
		case r.scrapes <- struct{}{}:
			defer func() { <-r.scrapes }()
		default:
			http.Error(w, "too many scrapes in flight", http.StatusServiceUnavailable)
			return
		}
		bp := scrapeBuffers.Get().(*[]byte)
		defer scrapeBuffers.Put(bp)
		buf := bytes.NewBuffer((*bp)[:0])
		// A collector that fails leaves its families out; the rest are
		// still worth serving (promhttp's ContinueOnError).
		families, _ := r.reg.Gather()
		enc := expfmt.NewEncoder(buf, textFormat)
		for _, mf := range families {
			_ = enc.Encode(mf)
		}
		b := buf.Bytes()
		if r.state != nil {
			b = r.state.appendTo(b)
		}
		w.Header().Set("Content-Type", string(textFormat))
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		_, _ = w.Write(b)
		*bp = b
	})
}

var (
	textFormat    = expfmt.NewFormat(expfmt.TypeTextPlain)
	scrapeBuffers = sync.Pool{New: func() any { return new([]byte) }}
)

// Gatherer exposes the registry for tests and other exporters.
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// sharedSyncCounters export SharedSyncCounts: how many logs a syncfs
// covers on average (rounds over calls) is what says whether sharing pays
// on this disk and workload.
func sharedSyncCounters(read func() (SharedSyncCounts, bool)) []prometheus.Collector {
	counter := func(name, help string, pick func(SharedSyncCounts) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 {
			c, ok := read()
			if !ok {
				return 0
			}
			return float64(pick(c))
		})
	}
	return []prometheus.Collector{
		counter("sluice_log_shared_syncfs_total", "syncfs calls that made several partition logs' append rounds durable at once (log.flush.shared.sync).",
			func(c SharedSyncCounts) int64 { return c.SyncFS }),
		counter("sluice_log_shared_syncfs_early_total", "Shared syncfs calls (among sluice_log_shared_syncfs_total) started while a produce of many partitions was still writing its rounds.",
			func(c SharedSyncCounts) int64 { return c.EarlySyncFS }),
		counter("sluice_log_shared_syncfs_rounds_total", "Append rounds made durable by a shared syncfs.",
			func(c SharedSyncCounts) int64 { return c.CoveredRounds }),
		counter("sluice_log_shared_sync_own_fdatasyncs_total", "Append rounds that fdatasynced their own segment file because no other log was syncing.",
			func(c SharedSyncCounts) int64 { return c.OwnSyncs }),
		counter("sluice_log_journal_syncs_total", "fdatasyncs of the write-ahead journal's files (log.flush.journal).",
			func(c SharedSyncCounts) int64 { return c.JournalSyncs }),
		counter("sluice_log_journal_records_total", "Records written to the write-ahead journal: append rounds and truncation fences.",
			func(c SharedSyncCounts) int64 { return c.JournalRecords }),
		counter("sluice_log_journal_full_total", "Append rounds the journal refused while its spare file was still being checkpointed; they synced their segments instead.",
			func(c SharedSyncCounts) int64 { return c.JournalFull }),
		counter("sluice_log_journal_checkpoints_total", "Journal files checkpointed (a syncfs, then the recovery points) and made ready for reuse.",
			func(c SharedSyncCounts) int64 { return c.JournalCheckpoints }),
		counter("sluice_log_journal_writeback_bytes_total", "Segment bytes of journaled rounds whose write-back was started early (sync_file_range), so a checkpoint's syncfs has less to write.",
			func(c SharedSyncCounts) int64 { return c.WritebackBytes }),
		counter("sluice_log_journal_writeback_refused_total", "Write-back hints refused by the file system or dropped with their queue full; only a hint, durability is unchanged.",
			func(c SharedSyncCounts) int64 { return c.WritebackRefused }),
	}
}
