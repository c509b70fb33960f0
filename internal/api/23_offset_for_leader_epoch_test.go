package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestOffsetForLeaderEpoch(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "ofle", 1)
	dpMustProduce(t, h, "ofle", 0, dpBatch(t, "x", 4, dpBatchOptions{}))
	for v := int16(2); v <= 4; v++ {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version = v
		for _, topic := range []string{"ofle", "missing"} {
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = topic
			for _, current := range []int32{-1, 0, 9} {
				rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
				rp.CurrentLeaderEpoch, rp.LeaderEpoch = current, 0
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
		}
		resp := h.do(req).(*kmsg.OffsetForLeaderEpochResponse)
		ps := resp.Topics[0].Partitions
		for _, p := range ps[:2] {
			if p.ErrorCode != 0 || p.LeaderEpoch != 0 || p.EndOffset != 4 {
				t.Fatalf("v%d: epoch 0: %+v", v, p)
			}
		}
		if ps[2].ErrorCode != kerr.UnknownLeaderEpoch.Code || ps[2].EndOffset != -1 {
			t.Fatalf("v%d: current epoch 9: %+v", v, ps[2])
		}
		if p := resp.Topics[1].Partitions[0]; p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.LeaderEpoch != -1 {
			t.Fatalf("v%d: unknown topic: %+v", v, p)
		}
	}
}
