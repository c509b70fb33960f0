package node

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestNodeShareGroupDeleteAfterRestartDeletesAllState: a franz-go share
// consumer reads two topics (three partitions), accepting every record,
// and leaves; the node restarts, so its coordinator knows the group only
// from __consumer_offsets, where no member subscribes any more. Deleting
// the group deletes the share state of every partition of both topics:
// the group's ShareGroupStatePartitionMetadata record names them.
func TestNodeShareGroupDeleteAfterRestartDeletesAllState(t *testing.T) {
	dir := t.TempDir()
	sets := []string{"share.auto.offset.reset=earliest", "group.share.heartbeat.interval.ms=100"}
	n := startNode(t, dir, sets...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	topics := map[string]int32{"alpha": 2, "beta": 1}
	for topic, partitions := range topics {
		if _, err := adm.CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	p := client(t, n, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := 0
	for topic, partitions := range topics {
		for part := range partitions {
			for i := range 3 {
				r := &kgo.Record{Topic: topic, Partition: part, Value: []byte(fmt.Sprint(topic, part, i))}
				if err := p.ProduceSync(ctx, r).FirstErr(); err != nil {
					t.Fatal(err)
				}
				want++
			}
		}
	}
	consumer := client(t, n, kgo.ShareGroup("audit"), kgo.ConsumeTopics("alpha", "beta"))
	seen := map[string]bool{}
	eventually(t, 60*time.Second, "every record accepted", func() bool {
		pollCtx, pollCancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := consumer.PollFetches(pollCtx)
		pollCancel()
		fetches.EachRecord(func(r *kgo.Record) {
			r.Ack(kgo.AckAccept)
			seen[string(r.Value)] = true
		})
		if err := consumer.FlushAcks(ctx); err != nil {
			t.Logf("flush acks: %v", err)
		}
		return len(seen) == want
	})
	consumer.Close()
	ids := topicIDs(t, ctx, adm, "alpha", "beta")
	// The state is there: the check below can see it.
	if got := shareStateStarts(t, ctx, client(t, n), "audit", ids, topics); got != "alpha-0=3 alpha-1=3 beta-0=3" {
		t.Fatalf("share partition start offsets before the delete: %s", got)
	}
	shutdown(t, n)

	n = startNode(t, dir, sets...)
	adm = kadm.NewClient(client(t, n))
	eventually(t, 30*time.Second, "the empty share group deleted", func() bool {
		_, err := adm.DeleteGroup(ctx, "audit")
		if err != nil && !kerr.IsRetriable(err) && !errors.Is(err, kerr.NonEmptyGroup) {
			t.Fatalf("deleting the share group: %v", err)
		}
		return err == nil
	})
	if got := shareStateStarts(t, ctx, client(t, n), "audit", ids, topics); got != "alpha-0=-1 alpha-1=-1 beta-0=-1" {
		t.Fatalf("share partition start offsets after the delete: %s, want none left", got)
	}
}

func topicIDs(t *testing.T, ctx context.Context, adm *kadm.Client, topics ...string) map[string][16]byte {
	t.Helper()
	md, err := adm.Metadata(ctx, topics...)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][16]byte{}
	for _, topic := range topics {
		out[topic] = md.Topics[topic].ID
	}
	return out
}

// shareStateStarts is each share partition's start offset as the share
// coordinator (ReadShareGroupStateSummary) has it, -1 for no state.
func shareStateStarts(t *testing.T, ctx context.Context, cl *kgo.Client, group string, ids map[string][16]byte, topics map[string]int32) string {
	t.Helper()
	req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
	req.GroupID = group
	for _, topic := range []string{"alpha", "beta"} {
		rt := kmsg.NewReadShareGroupStateSummaryRequestTopic()
		rt.TopicID = ids[topic]
		for part := range topics[topic] {
			rp := kmsg.NewReadShareGroupStateSummaryRequestTopicPartition()
			rp.Partition = part
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	var resp *kmsg.ReadShareGroupStateSummaryResponse
	eventually(t, 20*time.Second, "ReadShareGroupStateSummary answered", func() bool {
		var err error
		resp, err = req.RequestWith(ctx, cl)
		if err != nil {
			return false
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.ErrorCode != 0 {
					return false
				}
			}
		}
		return true
	})
	names := map[[16]byte]string{}
	for name, id := range ids {
		names[id] = name
	}
	out := ""
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if out != "" {
				out += " "
			}
			out += names[rt.TopicID] + "-" + strconv.Itoa(int(rp.Partition)) + "=" + strconv.FormatInt(rp.StartOffset, 10)
		}
	}
	return out
}
