package api

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestDescribeQuorum asks a quorum of one about its metadata partition, a
// partition that does not exist and a topic that has no quorum, at every
// version.
func TestDescribeQuorum(t *testing.T) {
	h := newHarness(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := h.cp.QuorumStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, portText, _ := net.SplitHostPort(st.VoterAddresses[1])
	port, _ := strconv.Atoi(portText)
	for v := int16(0); v <= 2; v++ {
		before := time.Now().UnixMilli()
		req := kmsg.NewPtrDescribeQuorumRequest()
		req.Version = v
		req.Topics = []kmsg.DescribeQuorumRequestTopic{
			{Topic: "__cluster_metadata", Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}, {Partition: 1}}},
			{Topic: "orders", Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}},
		}
		resp := h.do(req).(*kmsg.DescribeQuorumResponse)
		if resp.ErrorCode != 0 || len(resp.Topics) != 2 || len(resp.Topics[0].Partitions) != 2 || len(resp.Topics[1].Partitions) != 1 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.LeaderID != 1 || p.LeaderEpoch <= 0 || p.HighWatermark < h.cp.Image().Offset() ||
			len(p.CurrentVoters) != 1 || len(p.Observers) != 0 {
			t.Fatalf("v%d: metadata partition %+v", v, p)
		}
		voter := p.CurrentVoters[0]
		if voter.ReplicaID != 1 || voter.LogEndOffset < p.HighWatermark {
			t.Errorf("v%d: voter %+v, high watermark %d", v, voter, p.HighWatermark)
		}
		// The leader reports itself fetched and caught up now; v0 has no
		// times on the wire.
		wantTimes := v >= 1
		if got := voter.LastFetchTimestamp >= before && voter.LastCaughtUpTimestamp >= before; got != wantTimes ||
			!wantTimes && (voter.LastFetchTimestamp != -1 || voter.LastCaughtUpTimestamp != -1) {
			t.Errorf("v%d: voter times %d, %d (request at %d)", v, voter.LastFetchTimestamp, voter.LastCaughtUpTimestamp, before)
		}
		for _, bad := range []kmsg.DescribeQuorumResponseTopicPartition{resp.Topics[0].Partitions[1], resp.Topics[1].Partitions[0]} {
			if bad.ErrorCode != kerr.UnknownTopicOrPartition.Code || len(bad.CurrentVoters) != 0 || (bad.ErrorMessage != nil) != (v >= 2) {
				t.Errorf("v%d: partition without a quorum: %+v", v, bad)
			}
		}
		if v < 2 {
			continue
		}
		if len(resp.Nodes) != 1 || resp.Nodes[0].NodeID != 1 || len(resp.Nodes[0].Listeners) != 1 {
			t.Fatalf("v2 nodes %+v", resp.Nodes)
		}
		if l := resp.Nodes[0].Listeners[0]; l.Name != "CONTROLLER" || l.Host != host || int(l.Port) != port {
			t.Errorf("v2 listener %+v, want CONTROLLER %s:%d", l, host, port)
		}
	}
}

// TestDescribeQuorumNoTopics answers a request naming nothing with
// nothing, without reading the quorum.
func TestDescribeQuorumNoTopics(t *testing.T) {
	h := newHarness(t, Config{})
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Version = 2
	resp := h.do(req).(*kmsg.DescribeQuorumResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 0 || len(resp.Nodes) != 0 {
		t.Fatalf("%+v", resp)
	}
}

// TestDescribeQuorumAfterStop fails the whole request once the quorum has
// stopped, with a code clients retry.
func TestDescribeQuorumAfterStop(t *testing.T) {
	h := newHarness(t, Config{})
	h.cp.Kill()
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrDescribeQuorumRequest()
		req.Version = v
		req.Topics = []kmsg.DescribeQuorumRequestTopic{{Topic: "__cluster_metadata", Partitions: []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}}}
		resp := h.do(req).(*kmsg.DescribeQuorumResponse)
		if resp.ErrorCode != kerr.RequestTimedOut.Code || len(resp.Topics) != 0 || (resp.ErrorMessage != nil) != (v >= 2) {
			t.Errorf("v%d after stop: %+v", v, resp)
		}
	}
}
