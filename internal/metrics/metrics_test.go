package metrics

import (
	"bufio"
	"fmt"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// scrape renders the registry as a scraper sees it: series name with
// labels -> value.
func scrape(t testing.TB, r *Registry) (map[string]float64, int) {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	size := rec.Body.Len()
	series := map[string]float64{}
	sc := bufio.NewScanner(rec.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series, size
}

func want(t *testing.T, series map[string]float64, name string, value float64) {
	t.Helper()
	got, ok := series[name]
	if !ok {
		t.Errorf("%s: missing", name)
		return
	}
	if got != value {
		t.Errorf("%s = %v, want %v", name, got, value)
	}
}

func TestMetricsTopicCountersAndTotals(t *testing.T) {
	r := New(Options{})
	r.Topics.Topic("orders").In(3, 300)
	r.Topics.Topic("orders").In(2, 200)
	r.Topics.Topic("clicks").In(1, 10)
	r.Topics.Topic("clicks").Out(40)
	s, _ := scrape(t, r)
	want(t, s, `kafka_server_brokertopicmetrics_messagesin_total{topic="orders"}`, 5)
	want(t, s, `kafka_server_brokertopicmetrics_bytesin_total{topic="orders"}`, 500)
	want(t, s, `kafka_server_brokertopicmetrics_bytesout_total{topic="clicks"}`, 40)
	// The empty topic label is no label: Kafka's AllTopics.
	want(t, s, `kafka_server_brokertopicmetrics_messagesin_total{topic=""}`, 6)
	want(t, s, `kafka_server_brokertopicmetrics_bytesin_total{topic=""}`, 510)

	r.Topics.Retain(func(topic string) bool { return topic != "clicks" })
	s, _ = scrape(t, r)
	if _, ok := s[`kafka_server_brokertopicmetrics_bytesout_total{topic="clicks"}`]; ok {
		t.Error("a deleted topic's counters are still exported")
	}
	want(t, s, `kafka_server_brokertopicmetrics_messagesin_total{topic="orders"}`, 5)

	var nilTopics *Topics
	nilTopics.Topic("x").In(1, 1) // a broker without metrics counts nothing, without a check at each call
}

// TestMetricsTopicCountersConcurrently: produces on many goroutines create
// and count topics while a scrape prunes others; no count is lost.
func TestMetricsTopicCountersConcurrently(t *testing.T) {
	r := New(Options{})
	const workers, adds = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range adds {
				r.Topics.Topic(fmt.Sprintf("t%d", (w+i)%20)).In(1, 2)
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			r.Topics.Retain(func(topic string) bool { return topic != "gone" })
			r.Topics.Topic("gone")
		}
	})
	wg.Wait()
	var sum float64
	s, _ := scrape(t, r)
	for i := range 20 {
		sum += s[fmt.Sprintf(`kafka_server_brokertopicmetrics_messagesin_total{topic="t%d"}`, i)]
	}
	if sum != workers*adds || s[`kafka_server_brokertopicmetrics_messagesin_total{topic=""}`] != workers*adds {
		t.Errorf("per-topic sum %v, total %v, want %d", sum, s[`kafka_server_brokertopicmetrics_messagesin_total{topic=""}`], workers*adds)
	}
}

func TestMetricsRequestsCountTimeAndErrors(t *testing.T) {
	r := New(Options{APIKeys: map[int16]string{0: "Produce", 1: "Fetch"}})
	r.Requests.Served(0, 2*time.Millisecond)
	r.Requests.Served(0, 3*time.Millisecond)
	r.Requests.Served(99, time.Millisecond)
	r.Requests.Error(0, "UNKNOWN_TOPIC_OR_PARTITION", 2)
	s, _ := scrape(t, r)
	want(t, s, `kafka_network_requestmetrics_requests_total{request="Produce"}`, 2)
	want(t, s, `kafka_network_requestmetrics_requests_total{request="Fetch"}`, 0)
	want(t, s, `kafka_network_requestmetrics_requests_total{request="unknown"}`, 1)
	want(t, s, `kafka_network_requestmetrics_totaltime_seconds_count{request="Produce"}`, 2)
	want(t, s, `kafka_network_requestmetrics_totaltime_seconds_bucket{request="Produce",le="0.0025"}`, 1)
	want(t, s, `kafka_network_requestmetrics_errors_total{error="UNKNOWN_TOPIC_OR_PARTITION",request="Produce"}`, 2)
}

// fakeState is a node with n partitions of one topic, every other one led
// here, a third of those under-replicated.
type fakeState struct {
	partitions int
	groups     int
}

func (f fakeState) Node() NodeSample {
	return NodeSample{Connections: 7, ActiveController: true, OfflinePartitions: 2, GlobalPartitions: f.partitions, GlobalTopics: 1,
		RaftKnown: true, RaftEpoch: 4, RaftLeader: 1, RaftHighWatermark: 1234}
}

func (f fakeState) Partitions(visit func(*PartitionSample)) {
	var p PartitionSample
	for i := range f.partitions {
		p = PartitionSample{Topic: "events", Partition: int32(i), Leader: i%2 == 0, UnderReplicated: i%6 == 0,
			SizeBytes: int64(i) * 1000}
		visit(&p)
	}
}

func (f fakeState) GroupOffsets(visit func(*GroupOffsetSample)) {
	var o GroupOffsetSample
	for i := range f.groups {
		o = GroupOffsetSample{Group: fmt.Sprintf("g%d", i%10), Topic: "events", Partition: int32(i), Offset: 5, Lag: int64(i % 3)}
		if i%4 == 3 {
			o.Lag = -1 // not hosted here
		}
		visit(&o)
	}
}

func TestMetricsStateIsReadAtScrape(t *testing.T) {
	r := New(Options{State: fakeState{partitions: 12, groups: 4}})
	s, _ := scrape(t, r)
	want(t, s, `kafka_server_socket_server_metrics_connection_count{listener="PLAINTEXT"}`, 7)
	want(t, s, `kafka_controller_kafkacontroller_offlinepartitionscount`, 2)
	want(t, s, `kafka_server_raft_metrics_current_epoch`, 4)
	want(t, s, `kafka_server_raft_metrics_high_watermark`, 1234)
	want(t, s, `kafka_server_replicamanager_partitioncount`, 12)
	want(t, s, `kafka_server_replicamanager_leadercount`, 6)
	want(t, s, `kafka_server_replicamanager_underreplicatedpartitions`, 2) // partitions 0 and 6
	want(t, s, `kafka_cluster_partition_underreplicated{partition="6",topic="events"}`, 1)
	want(t, s, `kafka_cluster_partition_underreplicated{partition="2",topic="events"}`, 0)
	if _, ok := s[`kafka_cluster_partition_underreplicated{partition="1",topic="events"}`]; ok {
		t.Error("under-replicated reported for a partition led elsewhere")
	}
	want(t, s, `kafka_log_log_size{partition="11",topic="events"}`, 11000)
	want(t, s, `kafka_consumergroup_current_offset{consumergroup="g1",partition="1",topic="events"}`, 5)
	want(t, s, `kafka_consumergroup_lag{consumergroup="g2",partition="2",topic="events"}`, 2)
	if _, ok := s[`kafka_consumergroup_lag{consumergroup="g3",partition="3",topic="events"}`]; ok {
		t.Error("lag exported for a partition whose high watermark is unknown here")
	}
}

// BenchmarkMetricsScrape10000Partitions is one whole scrape of a node
// hosting 10,000 partitions (half led) and 1,000 committed group offsets,
// through the HTTP handler; bytes/scrape is the size of the response.
func BenchmarkMetricsScrape10000Partitions(b *testing.B) {
	r := New(Options{APIKeys: map[int16]string{0: "Produce", 1: "Fetch"}, State: fakeState{partitions: 10000, groups: 1000}})
	var size int
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// BenchmarkMetricsTopicIn is the hot-path cost a produce pays per
// partition appended, from every core at once: resolve the topic's
// counters among 1,000, add.
func BenchmarkMetricsTopicIn(b *testing.B) {
	r := New(Options{})
	for i := range 1000 {
		r.Topics.Topic(fmt.Sprintf("topic-%d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Topics.Topic("topic-500").In(10, 1000)
		}
	})
}

// TestMetricsScrapeIsValidText parses a whole scrape with the Prometheus
// text parser, which refuses a family split in two, a malformed line or a
// bad escape: the state metrics are written by hand.
func TestMetricsScrapeIsValidText(t *testing.T) {
	r := New(Options{APIKeys: map[int16]string{0: "Produce"}, State: quotedState{fakeState{partitions: 2}}})
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("scrape does not parse: %v", err)
	}
	lag := families["kafka_consumergroup_lag"]
	if lag == nil || len(lag.Metric) != 1 {
		t.Fatalf("kafka_consumergroup_lag: %v", lag)
	}
	labels := map[string]string{}
	for _, l := range lag.Metric[0].Label {
		labels[l.GetName()] = l.GetValue()
	}
	if g := labels["consumergroup"]; g != "a \"quoted\"\\group\nid" {
		t.Errorf("group label = %q", g)
	}
	if got := lag.Metric[0].GetGauge().GetValue(); got != 1e12 {
		t.Errorf("lag = %v", got)
	}
	if families["kafka_log_log_size"] == nil || families["go_goroutines"] == nil {
		t.Error("state or registry families missing")
	}
}

type quotedState struct{ fakeState }

func (quotedState) GroupOffsets(visit func(*GroupOffsetSample)) {
	visit(&GroupOffsetSample{Group: "a \"quoted\"\\group\nid", Topic: "t", Partition: 3, Offset: 7, Lag: 1e12})
}

// oddGroupState commits offsets under group ids a client may send but a
// Prometheus label value may not hold as is: not UTF-8, or empty.
type oddGroupState struct{ fakeState }

func (oddGroupState) GroupOffsets(visit func(*GroupOffsetSample)) {
	visit(&GroupOffsetSample{Group: "bad\xffutf8 \xe2\x82", Topic: "my.topic_name-1", Partition: 0, Offset: 1, Lag: 0})
	visit(&GroupOffsetSample{Group: "ok é", Topic: "my.topic_name-1", Partition: 1, Offset: 2, Lag: 0})
}

// TestMetricsScrapeParsesWithInvalidUTF8GroupID: one group id that is not
// UTF-8 used to make the Prometheus parser refuse the whole scrape.
func TestMetricsScrapeParsesWithInvalidUTF8GroupID(t *testing.T) {
	r := New(Options{State: oddGroupState{fakeState{partitions: 1}}})
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("scrape does not parse: %v", err)
	}
	offsets := families["kafka_consumergroup_current_offset"]
	if offsets == nil || len(offsets.Metric) != 2 {
		t.Fatalf("kafka_consumergroup_current_offset: %v", offsets)
	}
	var groups []string
	for _, m := range offsets.Metric {
		for _, l := range m.Label {
			if l.GetName() == "consumergroup" {
				groups = append(groups, l.GetValue())
			}
		}
		if topic := m.Label[len(m.Label)-1]; topic.GetValue() != "my.topic_name-1" {
			t.Errorf("topic label = %q", topic.GetValue())
		}
	}
	if want := []string{"bad\uFFFDutf8 \uFFFD\uFFFD", "ok é"}; fmt.Sprint(groups) != fmt.Sprint(want) {
		t.Errorf("group labels = %q, want %q", groups, want)
	}
}

// TestMetricsEveryFamilyOnce fills every metric, registry and state alike,
// and parses the scrape: each family's HELP and TYPE appear once (the
// parser refuses a second), and no family the state writes is also
// rendered by the registry.
func TestMetricsEveryFamilyOnce(t *testing.T) {
	r := New(Options{APIKeys: map[int16]string{0: "Produce", 1: "Fetch"}, State: quotedState{fakeState{partitions: 4, groups: 3}},
		RefusedConnections: func() map[string]int64 { return map[string]int64{"max.connections": 2} }})
	r.Topics.Topic("my.topic_name-1").In(2, 20)
	r.Topics.Topic("my.topic_name-1").Out(20)
	r.Requests.Served(0, time.Millisecond)
	r.Requests.Served(99, time.Millisecond)
	r.Requests.Error(1, "NOT_LEADER_OR_FOLLOWER", 1)
	r.QuotaThrottles.WithLabelValues("produce").Inc()
	r.LogFlush.Observe(0.001)
	r.ISRShrinks.Inc()
	r.Cleaner.BytesRead.Add(1)
	families, err := r.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range families {
		for _, f := range stateFamilies {
			if mf.GetName() == f.name {
				t.Errorf("%s is rendered by the registry and the state writer", f.name)
			}
		}
	}
	for range 2 { // the second scrape reuses the buffers of the first
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		parser := expfmt.NewTextParser(model.UTF8Validation)
		parsed, err := parser.TextToMetricFamilies(rec.Body)
		if err != nil {
			t.Fatalf("scrape does not parse: %v", err)
		}
		for _, name := range []string{"kafka_server_brokertopicmetrics_messagesin_total", "kafka_log_log_size",
			"kafka_consumergroup_lag", "sluice_connections_refused_total", "kafka_server_replicamanager_partitioncount"} {
			if parsed[name] == nil {
				t.Errorf("%s missing from the scrape", name)
			}
		}
	}
}

// The shared-sync counters read the log manager's totals at each scrape,
// and read 0 before the logs are open.
func TestMetricsSharedSyncCounters(t *testing.T) {
	open := false
	r := New(Options{SharedSyncs: func() (SharedSyncCounts, bool) {
		return SharedSyncCounts{SyncFS: 3, EarlySyncFS: 2, CoveredRounds: 11, OwnSyncs: 7}, open
	}})
	scrape := func() string {
		rec := httptest.NewRecorder()
		r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	if body := scrape(); !strings.Contains(body, "\nsluice_log_shared_syncfs_total 0\n") {
		t.Errorf("before the logs open, want sluice_log_shared_syncfs_total 0 in:\n%s", body)
	}
	open = true
	body := scrape()
	for _, want := range []string{"sluice_log_shared_syncfs_total 3", "sluice_log_shared_syncfs_early_total 2", "sluice_log_shared_syncfs_rounds_total 11", "sluice_log_shared_sync_own_fdatasyncs_total 7"} {
		if !strings.Contains(body, "\n"+want+"\n") {
			t.Errorf("want %q in the scrape", want)
		}
	}
}
