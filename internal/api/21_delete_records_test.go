package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func dpDeleteRecords(t testing.TB, h *harness, version int16, topic string, p int32, offset int64) kmsg.DeleteRecordsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version, req.TimeoutMillis = version, 10_000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = p, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return h.do(req).(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0]
}

func TestDeleteRecordsMovesTheLowWatermark(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "dr", 1)
	for range 4 {
		dpMustProduce(t, h, "dr", 0, dpBatch(t, "x", 3, dpBatchOptions{}))
	}
	if out := dpDeleteRecords(t, h, 0, "dr", 0, 5); out.ErrorCode != 0 || out.LowWatermark != 5 {
		t.Fatalf("delete before 5: %+v", out)
	}
	// Below the low watermark is out of range, with the offsets to reset to.
	fp := dpFetchOne(t, h, 12, "dr", 0, 2)
	if fp.ErrorCode != kerr.OffsetOutOfRange.Code || fp.LogStartOffset != 5 || fp.HighWatermark != 12 {
		t.Fatalf("fetch below the low watermark: %+v", fp)
	}
	// From the low watermark on, the batch holding it comes back.
	if fp = dpFetchOne(t, h, 12, "dr", 0, 5); fp.ErrorCode != 0 || fp.LogStartOffset != 5 || len(dpBatchHeaders(t, fp.RecordBatches)) == 0 {
		t.Fatalf("fetch at the low watermark: %+v", fp)
	}
	if out := dpListOffsets(t, h, 8, "dr", 0, -2, nil); out.Offset != 5 {
		t.Fatalf("earliest after delete: %+v", out)
	}
	// Past the high watermark is refused; -1 means the high watermark.
	if out := dpDeleteRecords(t, h, 1, "dr", 0, 13); out.ErrorCode != kerr.OffsetOutOfRange.Code || out.LowWatermark != -1 {
		t.Fatalf("delete past the hw: %+v", out)
	}
	if out := dpDeleteRecords(t, h, 2, "dr", 0, -1); out.ErrorCode != 0 || out.LowWatermark != 12 {
		t.Fatalf("delete to the hw: %+v", out)
	}
	if out := dpDeleteRecords(t, h, 2, "nope", 0, -1); out.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("unknown topic: %+v", out)
	}
}
