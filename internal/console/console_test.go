package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/console"
	"github.com/sluicelog/sluice/internal/node"
	"github.com/sluicelog/sluice/internal/vfs"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

const testTimeout = 60 * time.Second

// cluster is one in-process node, a console in front of it on an
// httptest server, and a franz-go client to check what the console did.
type cluster struct {
	node    *node.Node
	console *console.Console
	url     string
	client  *kgo.Client
	admin   *kadm.Client
	http    *http.Client
}

// startCluster starts the node and a console that samples every 200 ms.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	return startClusterWith(t, console.Options{ThroughputInterval: 200 * time.Millisecond, LagInterval: 200 * time.Millisecond})
}

// startClusterWith starts the node and a console with opts (Brokers and
// Logger are filled in).
func startClusterWith(t testing.TB, opts console.Options) *cluster {
	t.Helper()
	// http.listener on port 0: the default port would collide with any
	// other node on this machine.
	cfg, _, err := config.Load(vfs.OS(), config.Sources{Sets: []string{"log.dirs=" + t.TempDir(),
		"listeners=PLAINTEXT://127.0.0.1:0", "http.listener=127.0.0.1:0", "group.initial.rebalance.delay.ms=0"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	n, err := node.Start(ctx, node.Options{Config: cfg, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	opts.Brokers, opts.Logger = []string{n.Addr().String()}, quietLogger
	c, err := console.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	url := serveConsole(t, c)
	// Records go to the partition they name: the tests count on it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.Addr().String()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &cluster{node: n, console: c, url: url, client: cl, admin: kadm.NewClient(cl), http: noRedirects()}
}

// serveConsole serves c on an httptest server on loopback until the test
// ends, and returns its URL.
func serveConsole(t testing.TB, c *console.Console) string {
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return srv.URL
}

// noRedirects is an HTTP client that shows a POST's redirect instead of
// following it.
func noRedirects() *http.Client {
	return &http.Client{Timeout: testTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (c *cluster) get(t testing.TB, path string) (int, string) {
	t.Helper()
	resp, err := c.http.Get(c.url + path)
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

// mustGet fetches a page that must answer 200 and contain every want.
func (c *cluster) mustGet(t testing.TB, path string, want ...string) string {
	t.Helper()
	status, body := c.get(t, path)
	if status != http.StatusOK {
		t.Fatalf("GET %s: status %d:\n%s", path, status, body)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("GET %s does not contain %q:\n%s", path, w, body)
		}
	}
	return body
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func (c *cluster) csrf(t *testing.T) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(c.mustGet(t, "/produce"))
	if m == nil {
		t.Fatal("no CSRF token on the produce page")
	}
	return m[1]
}

func (c *cluster) post(t *testing.T, path string, form url.Values, origin string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

func (c *cluster) createTopic(t testing.TB, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := c.admin.CreateTopic(ctx, partitions, 1, nil, name); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) produce(t *testing.T, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := c.client.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func TestConsolePagesRender(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "orders", 3)
	c.produce(t, &kgo.Record{Topic: "orders", Partition: 0, Key: []byte("k"), Value: []byte("v")})
	c.mustGet(t, "/", c.node.ClusterID(), c.node.Addr().String(), "leader (active controller)", `id="under-replicated" >0<`)
	c.mustGet(t, "/topics", `href="/topics/orders"`, "<td>3</td>")
	topic := c.mustGet(t, "/topics/orders", "retention.ms", "High watermark", `id="partitions"`)
	if strings.Contains(topic, "<td>?</td>") {
		t.Errorf("a partition's size is unknown on the topic page:\n%s", topic)
	}
	c.mustGet(t, "/groups", "No consumer groups.")
	c.mustGet(t, "/produce", `id="produce-form"`)
	c.mustGet(t, "/static/console.js", "data-chart")
	if status, _ := c.get(t, "/topics/missing"); status != http.StatusBadGateway {
		t.Errorf("a missing topic's page: status %d, want 502 with the error", status)
	}
}

func TestConsoleMessageBrowser(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "events", 1)
	var recs []*kgo.Record
	for i := range 1200 {
		recs = append(recs, &kgo.Record{Topic: "events", Key: []byte(fmt.Sprintf("key-%04d", i)), Value: []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Headers: []kgo.RecordHeader{{Key: "parity", Value: []byte([]string{"even", "odd"}[i%2])}}})
	}
	recs = append(recs, &kgo.Record{Topic: "events", Key: []byte("binary"), Value: []byte{0, 1, 2, 0xff}})
	c.produce(t, recs...)

	body := c.mustGet(t, "/topics/events/messages?from=end&key=key-0017", `data-offset="17"`, "&#34;n&#34;: 17")
	if n := strings.Count(body, `class="record"`); n != 1 {
		t.Fatalf("a search by key shows %d records, want 1", n)
	}
	// Newest first is the default: the binary record comes first, as hex.
	body = c.mustGet(t, "/topics/events/messages?from=end&limit=3", `data-offset="1200"`, `class="hex"`, "binary, 4 bytes")
	if strings.Index(body, `data-offset="1200"`) > strings.Index(body, `data-offset="1199"`) {
		t.Fatal("newest first listed 1199 before 1200")
	}
	c.mustGet(t, "/topics/events/messages?from=offset&offset=10&order=oldest&limit=2", `data-offset="10"`, `data-offset="11"`, `id="more"`)
	c.mustGet(t, "/topics/events/messages?from=offset&offset=700&header=parity%3Dodd&limit=2", `data-offset="699"`, `data-offset="697"`)
	c.mustGet(t, "/topics/events/messages?from=timestamp&timestamp=0&order=oldest&limit=1", `data-offset="0"`)
	if status, body := c.get(t, "/topics/events/messages?from=sideways"); status != http.StatusBadRequest || !strings.Contains(body, "want end, start") {
		t.Fatalf("a bad query: status %d", status)
	}
}

func TestConsoleAlterTopicConfig(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "cfg", 1)
	token := c.csrf(t)
	set := url.Values{"csrf": {token}, "key": {"retention.ms"}, "value": {"123456"}}
	if status, _, _ := c.post(t, "/topics/cfg/configs", url.Values{"key": {"retention.ms"}, "value": {"1"}}, ""); status != http.StatusForbidden {
		t.Fatalf("a POST without the CSRF token: status %d, want 403", status)
	}
	if status, _, _ := c.post(t, "/topics/cfg/configs", set, "http://evil.example"); status != http.StatusForbidden {
		t.Fatalf("a cross-origin POST: status %d, want 403", status)
	}
	if status, loc, body := c.post(t, "/topics/cfg/configs", set, c.url); status != http.StatusSeeOther {
		t.Fatalf("set retention.ms: status %d (%s):\n%s", status, loc, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	rc, err := c.admin.DescribeTopicConfigs(ctx, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := rc.On("cfg", nil)
	found := false
	for _, cfg := range got.Configs {
		found = found || (cfg.Key == "retention.ms" && cfg.MaybeValue() == "123456")
	}
	if !found {
		t.Fatalf("retention.ms not changed: %+v", got.Configs)
	}
	bad := url.Values{"csrf": {token}, "key": {"retention.ms"}, "value": {"forever"}}
	status, _, body := c.post(t, "/topics/cfg/configs", bad, "")
	if status != http.StatusBadRequest || !strings.Contains(body, `id="error"`) || !strings.Contains(body, "retention.ms") {
		t.Fatalf("an invalid value: status %d, want 400 with the broker's error:\n%s", status, body)
	}
}

func TestConsoleResetOffsets(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "work", 2)
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{Topic: "work", Partition: int32(i % 2), Value: []byte("x")})
	}
	c.produce(t, recs...)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	commit := kadm.Offsets{}
	commit.AddOffset("work", 0, 7, -1)
	commit.AddOffset("work", 1, 9, -1)
	if err := c.admin.CommitAllOffsets(ctx, "batch", commit); err != nil {
		t.Fatal(err)
	}
	c.mustGet(t, "/groups/batch", `id="group-state">Empty<`, `class="committed">7<`)
	c.mustGet(t, "/groups/batch/reset?mode=offset&value=3&topic=work&partition=1", `class="new">3<`, `id="reset-confirm"`)
	form := url.Values{"csrf": {c.csrf(t)}, "mode": {"earliest"}, "topic": {""}}
	if status, loc, body := c.post(t, "/groups/batch/reset", form, ""); status != http.StatusSeeOther || !strings.HasPrefix(loc, "/groups/batch?notice=") {
		t.Fatalf("reset: status %d, location %q:\n%s", status, loc, body)
	}
	offsets, err := c.admin.FetchOffsets(ctx, "batch")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int32{0, 1} {
		if o, _ := offsets.Lookup("work", p); o.At != 0 {
			t.Errorf("work-%d committed at %d after a reset to earliest, want 0", p, o.At)
		}
	}

	// A group with a live member: the coordinator refuses, and the page
	// says so.
	member, err := kgo.NewClient(kgo.SeedBrokers(c.node.Addr().String()), kgo.ConsumerGroup("batch"), kgo.ConsumeTopics("work"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	for {
		described, err := c.admin.DescribeGroups(ctx, "batch")
		if err == nil && described["batch"].State == "Stable" {
			break
		}
		member.PollRecords(ctx, 1) // joins the group
		if ctx.Err() != nil {
			t.Fatal("the member never joined")
		}
	}
	c.mustGet(t, "/groups/batch/reset?mode=latest", "Kafka refuses to reset")
	form.Set("mode", "latest")
	status, _, body := c.post(t, "/groups/batch/reset", form, "")
	if status != http.StatusBadRequest || !strings.Contains(body, "refused the commit") {
		t.Fatalf("reset of a live group: status %d, want 400 with the coordinator's error:\n%s", status, body)
	}
}

func TestConsoleProduce(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "inbox", 3)
	form := url.Values{"csrf": {c.csrf(t)}, "topic": {"inbox"}, "partition": {"2"}, "key": {"hello"}, "value": {"world"}, "headers": {"a=1\nb=two"}}
	status, loc, body := c.post(t, "/produce", form, "")
	if status != http.StatusSeeOther || !strings.Contains(loc, "inbox-2") {
		t.Fatalf("produce: status %d, location %q:\n%s", status, loc, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	consumer, err := kgo.NewClient(kgo.SeedBrokers(c.node.Addr().String()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"inbox": {2: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	fetches := consumer.PollRecords(ctx, 1)
	if err := fetches.Err(); err != nil {
		t.Fatal(err)
	}
	r := fetches.Records()[0]
	if string(r.Key) != "hello" || string(r.Value) != "world" || len(r.Headers) != 2 || string(r.Headers[1].Value) != "two" {
		t.Fatalf("produced record = %+v", r)
	}
	form.Set("partition", "3")
	if status, _, body := c.post(t, "/produce", form, ""); status != http.StatusBadRequest || !strings.Contains(body, "has 3 partitions") {
		t.Fatalf("produce to a partition past the end: status %d:\n%s", status, body)
	}
}

func TestConsoleThroughputAndLagSampled(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "flow", 1)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	commit := kadm.Offsets{}
	commit.AddOffset("flow", 0, 0, -1)
	if err := c.admin.CommitAllOffsets(ctx, "watcher", commit); err != nil {
		t.Fatal(err)
	}
	type point map[string]float64
	var doc struct{ Points []point }
	for {
		c.produce(t, &kgo.Record{Topic: "flow", Value: []byte("tick")})
		_, body := c.get(t, "/api/throughput")
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("/api/throughput: %v: %s", err, body)
		}
		if n := len(doc.Points); n > 0 && doc.Points[n-1]["records_in"] > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("records in never rose above 0: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		_, body := c.get(t, "/api/groups/watcher/lag")
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		if n := len(doc.Points); n > 0 && doc.Points[n-1]["lag"] > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("lag never sampled: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConsoleGroupNameEscaped: group names may hold "/", "?", "#" and
// spaces; links carry them escaped and the pages find the group.
func TestConsoleGroupNameEscaped(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "t", 1)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	const name = "team a/b?x#y"
	commit := kadm.Offsets{}
	commit.AddOffset("t", 0, 0, -1)
	if err := c.admin.CommitAllOffsets(ctx, name, commit); err != nil {
		t.Fatal(err)
	}
	escaped := "/groups/" + url.PathEscape(name)
	c.mustGet(t, "/groups", `href="`+escaped+`"`)
	c.mustGet(t, escaped, `id="group-state">Empty<`, `action="`+escaped+`/reset"`, `data-chart="/api`+escaped+`/lag"`)
	c.mustGet(t, "/api"+escaped+"/lag", `"group":"team a/b?x#y"`)
}

// TestConsoleBrowserScanCapAndMore: a search that matches nothing stops at
// the scan cap and says so, with a "more" link that goes on from there;
// paging newest first with "more" walks down without gaps or repeats.
func TestConsoleBrowserScanCapAndMore(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "big", 1)
	const total = 25_000
	recs := make([]*kgo.Record, 0, total)
	for i := range total {
		recs = append(recs, &kgo.Record{Topic: "big", Key: []byte(fmt.Sprintf("k%05d", i)), Value: []byte("v")})
	}
	c.produce(t, recs...)

	body := c.mustGet(t, "/topics/big/messages?from=start&order=oldest&key=absent", `id="scan-capped"`, "20000 records", `id="more"`)
	if !strings.Contains(body, "offset=20000") {
		t.Fatalf("the more link does not continue at offset 20000:\n%s", body)
	}
	// The rest of the log, from the more link's offset, finishes the scan.
	c.mustGet(t, "/topics/big/messages?from=offset&offset=20000&order=oldest&key=absent", "Scanned 5000 records", "Reached the end of the log.")

	var seen []string
	next := "/topics/big/messages?from=end&limit=300"
	for range 3 {
		body := c.mustGet(t, next)
		for _, m := range offsetAttr.FindAllStringSubmatch(body, -1) {
			seen = append(seen, m[1])
		}
		more := moreLink.FindStringSubmatch(body)
		if more == nil {
			t.Fatal("no more link while records remain")
		}
		next = "/topics/big/messages" + strings.ReplaceAll(more[1], "&amp;", "&")
	}
	if len(seen) != 900 {
		t.Fatalf("three pages of 300 showed %d records", len(seen))
	}
	for i, off := range seen {
		if want := fmt.Sprint(total - 1 - i); off != want {
			t.Fatalf("record %d of the newest-first pages is offset %s, want %s", i, off, want)
		}
	}
}

var (
	offsetAttr = regexp.MustCompile(`data-offset="(\d+)"`)
	moreLink   = regexp.MustCompile(`id="more" href="([^"]+)"`)
)

// TestConsoleWithoutBrokers: New needs bootstrap addresses but not live
// brokers; a page then answers 502 with the error within the request
// timeout, and Close may be called twice.
func TestConsoleWithoutBrokers(t *testing.T) {
	if _, err := console.New(console.Options{}); err == nil {
		t.Fatal("New without brokers succeeded")
	}
	// Port 1 on loopback: nothing listens there.
	c, err := console.New(console.Options{Brokers: []string{"127.0.0.1:1"}, RequestTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/topics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(body), `id="error"`) {
		t.Fatalf("status %d, want 502 with an error box:\n%s", resp.StatusCode, body)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleManyPartitionsNoHugeSelect: past 256 partitions the browser
// offers a number input instead of a select listing them all.
func TestConsoleManyPartitionsNoHugeSelect(t *testing.T) {
	c := startCluster(t)
	c.createTopic(t, "few", 3)
	c.createTopic(t, "many", 300)
	c.mustGet(t, "/topics/few/messages", `<select name="partition"><option value="0" selected>0</option>`)
	body := c.mustGet(t, "/topics/many/messages", `<input name="partition" type="number" min="0" max="299" value="0">`)
	if strings.Contains(body, `<option value="299"`) {
		t.Fatal("the page lists 300 partitions")
	}
}

// TestConsoleRefusesForeignHost: a request naming another host (a page
// reaching the console through DNS rebinding) is refused before any page.
func TestConsoleRefusesForeignHost(t *testing.T) {
	c, err := console.New(console.Options{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	url := serveConsole(t, c)
	req, err := http.NewRequest(http.MethodGet, url+"/static/console.css", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "rebind.example:9644"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "DNS rebinding") {
		t.Fatalf("status %d, want 403 naming DNS rebinding: %s", resp.StatusCode, body)
	}
	req.Host = ""
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d for the server's own address, want 200", resp.StatusCode)
	}
}
