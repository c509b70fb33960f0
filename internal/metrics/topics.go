package metrics

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Topics are Kafka's BrokerTopicMetrics: records and bytes produced to
// and fetched from this broker's leaders, per topic and for all topics
// (the series with no topic label, as Kafka's AllTopics).
type Topics struct {
	// byTopic is replaced, never changed, under mu: a produce or fetch
	// reads it with one atomic load and no lock, so handlers on many
	// cores do not contend on a reader count. Topics are added once each,
	// so copying the map then is cheap over their lifetime.
	byTopic atomic.Pointer[map[string]*TopicCounters]
	mu      sync.Mutex
	all     TopicCounters

	messagesIn, bytesIn, bytesOut *prometheus.Desc
}

// TopicCounters are one topic's counts. A handler resolves them once per
// partition of a request; adding is atomic.
type TopicCounters struct {
	messagesIn, bytesIn, bytesOut atomic.Int64
	all                           *TopicCounters
}

func newTopics() *Topics {
	labels := []string{"topic"}
	t := &Topics{
		messagesIn: prometheus.NewDesc("kafka_server_brokertopicmetrics_messagesin_total",
			"Records appended by produce requests to partitions this node leads; the series without a topic label is all topics.", labels, nil),
		bytesIn: prometheus.NewDesc("kafka_server_brokertopicmetrics_bytesin_total",
			"Record batch bytes appended by produce requests; the series without a topic label is all topics.", labels, nil),
		bytesOut: prometheus.NewDesc("kafka_server_brokertopicmetrics_bytesout_total",
			"Record batch bytes sent to consumers by fetch requests (not to follower replicas); the series without a topic label is all topics.", labels, nil),
	}
	t.byTopic.Store(&map[string]*TopicCounters{})
	return t
}

// Topic returns the counters of topic, creating them on first use; nil
// on a nil Topics, whose counters ignore adds.
func (t *Topics) Topic(topic string) *TopicCounters {
	if t == nil {
		return nil
	}
	if c := (*t.byTopic.Load())[topic]; c != nil {
		return c
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.byTopic.Load()
	if c := old[topic]; c != nil {
		return c
	}
	c := &TopicCounters{all: &t.all}
	next := make(map[string]*TopicCounters, len(old)+1)
	maps.Copy(next, old)
	next[topic] = c
	t.byTopic.Store(&next)
	return c
}

// Retain forgets the counters of topics for which keep is false (deleted
// topics), so a cluster that churns topics does not grow the scrape.
func (t *Topics) Retain(keep func(topic string) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.byTopic.Load()
	next := make(map[string]*TopicCounters, len(old))
	for name, c := range old {
		if keep(name) {
			next[name] = c
		}
	}
	if len(next) < len(old) {
		t.byTopic.Store(&next)
	}
}

// In counts records and bytes appended by a produce.
func (c *TopicCounters) In(records, bytes int64) {
	if c == nil {
		return
	}
	c.messagesIn.Add(records)
	c.bytesIn.Add(bytes)
	c.all.messagesIn.Add(records)
	c.all.bytesIn.Add(bytes)
}

// Out counts bytes sent to a consumer.
func (c *TopicCounters) Out(bytes int64) {
	if c == nil {
		return
	}
	c.bytesOut.Add(bytes)
	c.all.bytesOut.Add(bytes)
}

// Describe implements prometheus.Collector.
func (t *Topics) Describe(ch chan<- *prometheus.Desc) {
	ch <- t.messagesIn
	ch <- t.bytesIn
	ch <- t.bytesOut
}

// Collect implements prometheus.Collector.
func (t *Topics) Collect(ch chan<- prometheus.Metric) {
	t.collect(ch, "", &t.all)
	for name, c := range *t.byTopic.Load() {
		t.collect(ch, name, c)
	}
}

func (t *Topics) collect(ch chan<- prometheus.Metric, topic string, c *TopicCounters) {
	ch <- prometheus.MustNewConstMetric(t.messagesIn, prometheus.CounterValue, float64(c.messagesIn.Load()), topic)
	ch <- prometheus.MustNewConstMetric(t.bytesIn, prometheus.CounterValue, float64(c.bytesIn.Load()), topic)
	ch <- prometheus.MustNewConstMetric(t.bytesOut, prometheus.CounterValue, float64(c.bytesOut.Load()), topic)
}
