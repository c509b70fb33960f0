package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// syncBuffer is a log destination tests read while the node writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func httpGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// scrapeNode reads /metrics as series name with labels -> value.
func scrapeNode(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	code, body := httpGet(t, n.HTTPAddr().String(), "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d: %s", code, body)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		series[line[:i]] = v
	}
	return series
}

func series(t *testing.T, s map[string]float64, name string) float64 {
	t.Helper()
	v, ok := s[name]
	if !ok {
		t.Fatalf("no series %s", name)
	}
	return v
}

// TestNodeMetricsFollowRealTraffic drives a node with franz-go and checks
// the counters against what was sent: records and bytes in per topic,
// bytes out to a consumer, request counts and times, an error code, a
// consumer group's lag, log sizes, fsyncs, and the audit lines of the
// admin requests.
//
// long: one node, one story, each step checked against the metrics it
// should move; split up, each part would restart a node.
func TestNodeMetricsFollowRealTraffic(t *testing.T) {
	logs := &syncBuffer{}
	cfg := loadConfig(t, "log.dirs="+t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, n) })
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	before := scrapeNode(t, n)

	const records = 50
	p := client(t, n, kgo.DefaultProduceTopic("orders"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var valueBytes int
	for i := range records {
		r := &kgo.Record{Partition: 0, Value: []byte(fmt.Sprintf("value-%03d", i))}
		valueBytes += len(r.Value)
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	// A bad request: an invalid topic name is refused with
	// INVALID_TOPIC_EXCEPTION, counted by API and error name.
	res, err := adm.CreateTopic(ctx, 1, 1, nil, "bad/name")
	if err == nil && res.Err == nil {
		t.Fatal("a topic named bad/name was created")
	}
	consumeAll(t, ctx, n, "orders", records)
	// Committing record 9 commits offset 10, the next one to read.
	if _, err := adm.CommitOffsets(ctx, "auditors", kadm.OffsetsFromRecords(kgo.Record{Topic: "orders", Partition: 0, Offset: 9})); err != nil {
		t.Fatal(err)
	}

	after := scrapeNode(t, n)
	if got := series(t, after, `kafka_server_brokertopicmetrics_messagesin_total{topic="orders"}`); got != records {
		t.Errorf("messagesin for orders = %v, want %d", got, records)
	}
	bytesIn := series(t, after, `kafka_server_brokertopicmetrics_bytesin_total{topic="orders"}`)
	if bytesIn < float64(valueBytes) {
		t.Errorf("bytesin for orders = %v, less than the %d value bytes produced", bytesIn, valueBytes)
	}
	if total := series(t, after, `kafka_server_brokertopicmetrics_bytesin_total{topic=""}`); total < bytesIn {
		t.Errorf("bytesin for all topics %v < bytesin for orders %v", total, bytesIn)
	}
	if got := series(t, after, `kafka_server_brokertopicmetrics_bytesout_total{topic="orders"}`); got < bytesIn {
		t.Errorf("bytesout for orders = %v after consuming every batch (%v bytes in)", got, bytesIn)
	}
	produces := series(t, after, `kafka_network_requestmetrics_requests_total{request="Produce"}`) -
		series(t, before, `kafka_network_requestmetrics_requests_total{request="Produce"}`)
	if produces < records {
		t.Errorf("%v Produce requests counted for %d synchronous produces", produces, records)
	}
	if got := series(t, after, `kafka_network_requestmetrics_totaltime_seconds_count{request="Produce"}`); got != series(t, after, `kafka_network_requestmetrics_requests_total{request="Produce"}`) {
		t.Errorf("Produce timed %v times", got)
	}
	if got := series(t, after, `kafka_network_requestmetrics_errors_total{error="INVALID_TOPIC_EXCEPTION",request="CreateTopics"}`); got != 1 {
		t.Errorf("INVALID_TOPIC_EXCEPTION counted %v times", got)
	}
	if got := series(t, after, `kafka_consumergroup_lag{consumergroup="auditors",partition="0",topic="orders"}`); got != records-10 {
		t.Errorf("lag of auditors on orders-0 = %v, want %d", got, records-10)
	}
	if got := series(t, after, `kafka_log_log_size{partition="0",topic="orders"}`); got < bytesIn {
		t.Errorf("log size of orders-0 = %v, less than the %v bytes appended", got, bytesIn)
	}
	if got := series(t, after, `kafka_log_logflushstats_logflushtime_seconds_count`); got < records {
		t.Errorf("%v fsyncs observed for %d acknowledged produces under log.flush.policy=always", got, records)
	}
	if got := series(t, after, `kafka_server_raft_metrics_current_leader`); got != 1 {
		t.Errorf("raft leader = %v, want node 1", got)
	}
	if got := series(t, after, `kafka_server_socket_server_metrics_connection_count{listener="PLAINTEXT"}`); got < 1 {
		t.Errorf("%v open connections while clients are connected", got)
	}
	if got := series(t, after, `kafka_server_replicamanager_leadercount`); got < 2 {
		t.Errorf("leader count = %v, want at least the 2 partitions of orders", got)
	}

	if _, err := adm.DeleteTopic(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, line := range []string{
		`action=create_topic resource_type=topic resource=orders`,
		`action=create_topic resource_type=topic resource=bad/name`,
		`action=delete_topic resource_type=topic resource=orders`,
	} {
		if !strings.Contains(out, line) {
			t.Errorf("no audit line with %q in the log", line)
		}
	}
	if !strings.Contains(out, "result=INVALID_TOPIC_EXCEPTION") {
		t.Error("the refused topic's audit line does not give the error")
	}
	if got := strings.Count(out, "loaded group coordinator shard"); got > 1 {
		t.Errorf("%d coordinator load lines, want one summary", got)
	}
}

// freePort reserves a loopback port and frees it for the node to bind:
// a test that must know the HTTP address before Start returns.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type readyBody struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
}

func readyz(t *testing.T, addr string) (int, readyBody, bool) {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, readyBody{}, false // not listening yet
	}
	defer resp.Body.Close()
	var body readyBody
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	return resp.StatusCode, body, true
}

// startWatchingReadyz starts a node on dir in the background and polls
// /readyz until Start returns; it returns the node and the 503 reasons
// seen on the way.
func startWatchingReadyz(t *testing.T, dir, httpAddr string) (*Node, []string) {
	t.Helper()
	cfg := loadConfig(t, "log.dirs="+dir, "listeners=PLAINTEXT://127.0.0.1:0", "http.listener="+httpAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type started struct {
		n   *Node
		err error
	}
	done := make(chan started, 1)
	go func() {
		n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger})
		done <- started{n, err}
	}()
	var reasons []string
	for {
		select {
		case s := <-done:
			if s.err != nil {
				t.Fatal(s.err)
			}
			t.Cleanup(func() { shutdown(t, s.n) })
			return s.n, reasons
		default:
		}
		if code, body, ok := readyz(t, httpAddr); ok && code != 200 {
			if code != 503 || body.Ready || body.Reason == "" {
				t.Fatalf("/readyz before ready = %d %+v, want 503 with a reason", code, body)
			}
			reasons = append(reasons, body.Reason)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNodeReadyzAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	httpAddr := freePort(t)
	n, reasons := startWatchingReadyz(t, dir, httpAddr)
	t.Logf("first start, not ready on the way: %q", reasons)
	if n.HTTPAddr().String() != httpAddr {
		t.Fatalf("HTTP listener on %s, configured %s", n.HTTPAddr(), httpAddr)
	}
	if code, body, _ := readyz(t, httpAddr); code != 200 || !body.Ready {
		t.Fatalf("/readyz after Start = %d %+v", code, body)
	}
	shutdown(t, n)
	if _, _, listening := readyz(t, httpAddr); listening {
		t.Fatal("the HTTP listener outlived the node")
	}

	n2, reasons := startWatchingReadyz(t, dir, httpAddr)
	t.Logf("restart, not ready on the way: %q", reasons)
	if code, body, _ := readyz(t, n2.HTTPAddr().String()); code != 200 || !body.Ready {
		t.Fatalf("/readyz after the restart = %d %+v", code, body)
	}
	if code, _ := httpGet(t, httpAddr, "/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
}

// TestNodeReadyzSaysWhyWithoutQuorum: a voter whose fellow voter never
// comes up cannot register, and /readyz says so with 503 all along.
func TestNodeReadyzSaysWhyWithoutQuorum(t *testing.T) {
	httpAddr := freePort(t)
	voters := "1@" + freePort(t) + ",2@" + freePort(t)
	cfg := loadConfig(t, "log.dirs="+t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0", "http.listener="+httpAddr,
		"node.id=1", "controller.quorum.voters="+voters)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger})
		if n != nil {
			shutdown(t, n)
		}
		done <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	var body readyBody
	for {
		code, b, ok := readyz(t, httpAddr)
		if ok {
			if code != 503 || b.Ready {
				t.Fatalf("/readyz without a quorum = %d %+v", code, b)
			}
			body = b
			if strings.Contains(b.Reason, "registering") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never said it waits to register; last %+v", body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Start succeeded without a quorum")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Start did not return after its context was cancelled")
	}
	if _, _, listening := readyz(t, httpAddr); listening {
		t.Fatal("a failed start left the HTTP listener open")
	}
}

func TestNodePprofIsOffByDefault(t *testing.T) {
	off := startNode(t, t.TempDir())
	if code, _ := httpGet(t, off.HTTPAddr().String(), "/debug/pprof/"); code != 404 {
		t.Errorf("pprof by default: %d, want 404", code)
	}
	on := startNode(t, t.TempDir(), "http.pprof.enabled=true")
	if code, body := httpGet(t, on.HTTPAddr().String(), "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof enabled: %d", code)
	}
}

func TestNodeEmptyHTTPListenerDisablesIt(t *testing.T) {
	n := startNode(t, t.TempDir(), "http.listener=")
	if a := n.HTTPAddr(); a != nil {
		t.Fatalf("http.listener is empty, yet HTTP listens on %s", a)
	}
}

// TestNodeServesTheConsole: a broker mounts the built-in console at "/" of
// its HTTP listener, talking to its own client listener; with
// http.console.enabled=false "/" is the index of the other endpoints.
func TestNodeServesTheConsole(t *testing.T) {
	n := startNode(t, t.TempDir())
	code, body := httpGet(t, n.HTTPAddr().String(), "/topics")
	if code != 200 || !strings.Contains(body, "__consumer_offsets") && !strings.Contains(body, "Topics") {
		t.Fatalf("console /topics = %d: %.300s", code, body)
	}
	off := startNode(t, t.TempDir(), "http.console.enabled=false")
	if code, body := httpGet(t, off.HTTPAddr().String(), "/"); code != 200 || !strings.Contains(body, "/metrics") {
		t.Fatalf("index with the console off = %d: %.300s", code, body)
	}
	if code, _ := httpGet(t, off.HTTPAddr().String(), "/topics"); code != 404 {
		t.Fatalf("/topics with the console off = %d, want 404", code)
	}
}
