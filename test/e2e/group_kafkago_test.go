package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	kafka "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestE2EGroupKafkaGoReader: segmentio/kafka-go's group reader, which
// hardcodes old versions (JoinGroup v1/v2, SyncGroup/Heartbeat/LeaveGroup
// v0, OffsetCommit v2), joins, consumes, commits, and a second reader of
// the same group resumes after the commits.
func TestE2EGroupKafkaGoReader(t *testing.T) {
	b := startGroupBroker(t)
	const topic, group, parts = "kafkago", "kafkago-g", 3
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	producePerPartition(t, b.Addr(), topic, "one", parts, 10)

	got := readKafkaGo(t, b.Addr(), group, topic, parts*10)
	wantOffsets(t, got, map[int32][2]int64{0: {0, 10}, 1: {0, 10}, 2: {0, 10}})
	wantCommitted(t, b.Addr(), group, topic, map[int32]int64{0: 10, 1: 10, 2: 10})

	producePerPartition(t, b.Addr(), topic, "two", parts, 5)
	got = readKafkaGo(t, b.Addr(), group, topic, parts*5)
	wantOffsets(t, got, map[int32][2]int64{0: {10, 15}, 1: {10, 15}, 2: {10, 15}})
	wantCommitted(t, b.Addr(), group, topic, map[int32]int64{0: 15, 1: 15, 2: 15})
}

// readKafkaGo reads n records with a kafka-go group reader, committing
// each, then waits a moment more for a record that should not come. It
// returns them as kgo records (partition and offset set) for wantOffsets.
func readKafkaGo(t *testing.T, addr, group, topic string, n int) []*kgo.Record {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:           []string{addr},
		GroupID:           group,
		Topic:             topic,
		MaxWait:           300 * time.Millisecond,
		SessionTimeout:    groupSession,
		HeartbeatInterval: 500 * time.Millisecond,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		MaxAttempts:       5,
		ErrorLogger: kafka.LoggerFunc(func(format string, args ...any) {
			t.Logf("kafka-go: "+format, args...)
		}),
	})
	defer func() {
		closed := make(chan error, 1)
		go func() { closed <- r.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Errorf("kafka-go reader Close: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("kafka-go reader Close did not return within 30 s")
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("kafka-go FetchMessage after %d of %d records: %v", len(out), n, err)
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatalf("kafka-go CommitMessages %d/%d: %v", m.Partition, m.Offset, err)
		}
		out = append(out, &kgo.Record{Partition: int32(m.Partition), Offset: m.Offset, Value: m.Value})
	}
	extra, cancelExtra := context.WithTimeout(context.Background(), time.Second)
	defer cancelExtra()
	if m, err := r.FetchMessage(extra); err == nil {
		out = append(out, &kgo.Record{Partition: int32(m.Partition), Offset: m.Offset, Value: m.Value})
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("kafka-go FetchMessage: %v", err)
	}
	return out
}
