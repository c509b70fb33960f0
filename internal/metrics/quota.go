package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Quota and connection-limit metrics. Kafka reports throttling per client
// (user and client-id labels), which grows with clients; these are per
// quota and per reason, a fixed handful of series.

func newQuotaThrottles() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_quota_throttled_responses_total",
		Help: "Responses sent with a throttle time (and their connection muted), by the client quota that throttled them.",
	}, []string{"quota"})
}

// refusedCollector reads the network server's refused-connection counts
// at scrape time.
type refusedCollector struct {
	read func() map[string]int64
	desc *prometheus.Desc
}

func newRefusedCollector(read func() map[string]int64) *refusedCollector {
	return &refusedCollector{read: read, desc: prometheus.NewDesc("sluice_connections_refused_total",
		"Client connections closed right after accept, by the limit that refused them "+
			"(max.connections, max.connections.per.ip, connection_creation_rate).", []string{"reason"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *refusedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *refusedCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.read()
	reasons := make([]string, 0, len(counts))
	for r := range counts {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	for _, r := range reasons {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(counts[r]), r)
	}
}
