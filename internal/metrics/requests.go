package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxAPIKey bounds the API keys with pre-resolved series; Kafka's keys are
// below 100 and a key outside is counted under "unknown".
const maxAPIKey = 127

// requestBuckets span an in-memory answer (~50µs) to a long-polling fetch
// or an acks=all produce waiting out its timeout.
var requestBuckets = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// Requests are Kafka's RequestMetrics per API key: how many requests, how
// long each took from the frame read to the response ready, and the error
// codes in their responses.
type Requests struct {
	requests *prometheus.CounterVec
	time     *prometheus.HistogramVec
	errors   *prometheus.CounterVec
	// byKey holds each served key's series, resolved once, so counting a
	// request is two atomic operations and no label hashing.
	byKey [maxAPIKey + 1]*requestSeries
	names [maxAPIKey + 1]string
}

type requestSeries struct {
	requests prometheus.Counter
	time     prometheus.Observer
}

func newRequests(apiKeys map[int16]string) *Requests {
	r := &Requests{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_network_requestmetrics_requests_total",
			Help: "Requests served, by API (Kafka's RequestMetrics RequestsPerSec).",
		}, []string{"request"}),
		time: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kafka_network_requestmetrics_totaltime_seconds",
			Help:    "Time from a request read to its response ready, by API (Kafka's RequestMetrics TotalTimeMs, in seconds).",
			Buckets: requestBuckets,
		}, []string{"request"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kafka_network_requestmetrics_errors_total",
			Help: "Error codes in responses, by API and Kafka error name, one per partition or resource that failed (Kafka's RequestMetrics ErrorsPerSec, without NONE).",
		}, []string{"request", "error"}),
	}
	for key, name := range apiKeys {
		if key < 0 || key > maxAPIKey {
			continue
		}
		r.names[key] = name
		r.byKey[key] = &requestSeries{requests: r.requests.WithLabelValues(name), time: r.time.WithLabelValues(name)}
	}
	return r
}

func (r *Requests) name(key int16) string {
	if key >= 0 && key <= maxAPIKey && r.names[key] != "" {
		return r.names[key]
	}
	return "unknown"
}

// Served counts one request of API key and the time it took.
func (r *Requests) Served(key int16, took time.Duration) {
	if r == nil {
		return
	}
	if key >= 0 && key <= maxAPIKey {
		if s := r.byKey[key]; s != nil {
			s.requests.Inc()
			s.time.Observe(took.Seconds())
			return
		}
	}
	r.requests.WithLabelValues("unknown").Inc()
	r.time.WithLabelValues("unknown").Observe(took.Seconds())
}

// Error counts n occurrences of a Kafka error (by its name, such as
// UNKNOWN_TOPIC_OR_PARTITION) in a response of API key. Errors are the
// rare path, so their series are looked up by label.
func (r *Requests) Error(key int16, errorName string, n int) {
	if r == nil || n <= 0 {
		return
	}
	r.errors.WithLabelValues(r.name(key), errorName).Add(float64(n))
}

// ErrorName is the label for an error code with no Kafka name.
func ErrorName(code int16) string { return "UNKNOWN_CODE_" + strconv.Itoa(int(code)) }

// Describe implements prometheus.Collector.
func (r *Requests) Describe(ch chan<- *prometheus.Desc) {
	r.requests.Describe(ch)
	r.time.Describe(ch)
	r.errors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Requests) Collect(ch chan<- prometheus.Metric) {
	r.requests.Collect(ch)
	r.time.Collect(ch)
	r.errors.Collect(ch)
}
