package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/vfs"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// startNode starts a cluster of one on a free loopback port.
func startNode(t *testing.T, dir string, sets ...string) *Node {
	t.Helper()
	cfg := loadConfig(t, append([]string{"log.dirs=" + dir, "listeners=PLAINTEXT://127.0.0.1:0"}, sets...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, n) })
	return n
}

// loadConfig loads sets over the defaults, with the HTTP listener on a free
// loopback port (its default port would collide between tests); a test's
// own http.listener wins.
func loadConfig(t testing.TB, sets ...string) *config.Broker {
	t.Helper()
	cfg, _, err := config.Load(vfs.OS(), config.Sources{Sets: append([]string{"http.listener=127.0.0.1:0"}, sets...)})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func shutdown(t *testing.T, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func client(t *testing.T, n *Node, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(n.Addr().String())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// TestNodeProduceConsumeSurvivesRestart is the whole path in one process:
// create a topic, produce idempotently, consume, restart on the same
// directory, and read the same records at the same offsets.
func TestNodeProduceConsumeSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	p := client(t, n, kgo.DefaultProduceTopic("orders"))
	const total = 300
	for i := range total {
		r := &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("value-%d", i))}
		if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	want := consumeAll(t, ctx, n, "orders", total)
	shutdown(t, n)

	n2 := startNode(t, dir)
	got := consumeAll(t, ctx, n2, "orders", total)
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("after restart %v = %q, want %q", k, got[k], v)
		}
	}
}

type partitionOffset struct {
	partition int32
	offset    int64
}

func consumeAll(t *testing.T, ctx context.Context, n *Node, topic string, total int) map[partitionOffset]string {
	t.Helper()
	c := client(t, n, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[partitionOffset]string{}
	for len(seen) < total {
		fetches := c.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(seen), total, err)
		}
		fetches.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", topic, p, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			key := partitionOffset{r.Partition, r.Offset}
			if _, dup := seen[key]; dup {
				t.Fatalf("record %v delivered twice", key)
			}
			seen[key] = string(r.Value)
		})
	}
	c.Close()
	return seen
}

func TestNodeRefusesADataDirInUse(t *testing.T) {
	dir := t.TempDir()
	startNode(t, dir)
	cfg := loadConfig(t, "log.dirs="+dir, "listeners=PLAINTEXT://127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger})
	if !errors.Is(err, vfs.ErrLocked) {
		if n != nil {
			shutdown(t, n)
		}
		t.Fatalf("second node on one data dir: %v, want vfs.ErrLocked", err)
	}
}

// TestNodeAdvertisesAdvertisedListeners: clients are told
// advertised.listeners, not the bound address.
func TestNodeAdvertisesAdvertisedListeners(t *testing.T) {
	n := startNode(t, t.TempDir(), "advertised.listeners=PLAINTEXT://broker.example:9094")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	resp, err := client(t, n).Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	brokers := resp.(*kmsg.MetadataResponse).Brokers
	if len(brokers) != 1 || brokers[0].Host != "broker.example" || brokers[0].Port != 9094 {
		t.Fatalf("brokers %+v, want broker.example:9094", brokers)
	}
}
