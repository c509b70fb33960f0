package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func dpListOffsets(t testing.TB, h *harness, version int16, topic string, p int32, timestamp int64, tweak func(*kmsg.ListOffsetsRequest)) kmsg.ListOffsetsResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = version
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = p, timestamp
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	if tweak != nil {
		tweak(req)
	}
	resp := h.do(req).(*kmsg.ListOffsetsResponse)
	return resp.Topics[0].Partitions[0]
}

func TestListOffsetsSpecialsAndTimestamps(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "lo", 1)
	// Offsets 0-2 at 1000.., 3-5 at 5000.., 6-8 at 3000...
	for _, ts := range []int64{1000, 5000, 3000} {
		dpMustProduce(t, h, "lo", 0, dpBatch(t, "x", 3, dpBatchOptions{timestampMs: ts}))
	}
	cases := []struct {
		name              string
		timestamp         int64
		offset, foundTime int64
		epoch             int32
	}{
		{"latest", -1, 9, -1, 0},
		{"earliest", -2, 0, -1, 0},
		{"max timestamp", -3, 5, 5002, 0},
		{"earliest local", -4, 0, -1, 0},
		{"latest tiered: nothing is tiered", -5, -1, -1, -1},
		{"exact time", 1001, 1, 1001, 0},
		{"between times", 4000, 3, 5000, 0},
		{"before everything", 0, 0, 1000, 0},
		{"after everything", 9999, -1, -1, -1},
	}
	for _, v := range []int16{1, 4, 7, 8} {
		for _, tc := range cases {
			if tc.timestamp == -3 && v < 7 {
				continue
			}
			out := dpListOffsets(t, h, v, "lo", 0, tc.timestamp, nil)
			wantEpoch := tc.epoch
			if v < 4 {
				wantEpoch = -1 // not in the response before v4
			}
			if out.ErrorCode != 0 || out.Offset != tc.offset || out.Timestamp != tc.foundTime || out.LeaderEpoch != wantEpoch {
				t.Fatalf("v%d %s: error %d offset %d timestamp %d epoch %d; want offset %d timestamp %d epoch %d",
					v, tc.name, out.ErrorCode, out.Offset, out.Timestamp, out.LeaderEpoch, tc.offset, tc.foundTime, wantEpoch)
			}
		}
	}
	// read_committed: the last stable offset, which is the high watermark
	// without transactions.
	out := dpListOffsets(t, h, 5, "lo", 0, -1, func(r *kmsg.ListOffsetsRequest) { r.IsolationLevel = 1 })
	if out.Offset != 9 {
		t.Fatalf("read_committed latest: %d", out.Offset)
	}
}

func TestListOffsetsV0OldStyle(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "lo0", 1)
	for _, ts := range []int64{1000, 5000} {
		dpMustProduce(t, h, "lo0", 0, dpBatch(t, "x", 3, dpBatchOptions{timestampMs: ts}))
	}
	cases := []struct {
		timestamp int64
		max       int32
		want      []int64
	}{
		{-1, 1, []int64{6}},
		{-1, 10, []int64{6, 0}},
		{-2, 1, []int64{0}},
		{4000, 1, []int64{3}},
		{9999, 1, []int64{6}},
		{-1, 0, []int64{}},
	}
	for _, tc := range cases {
		out := dpListOffsets(t, h, 0, "lo0", 0, tc.timestamp, func(r *kmsg.ListOffsetsRequest) { r.Topics[0].Partitions[0].MaxNumOffsets = tc.max })
		if out.ErrorCode != 0 || len(out.OldStyleOffsets) != len(tc.want) {
			t.Fatalf("v0 %d max %d: %+v, want %v", tc.timestamp, tc.max, out, tc.want)
		}
		for i := range tc.want {
			if out.OldStyleOffsets[i] != tc.want[i] {
				t.Fatalf("v0 %d max %d: %v, want %v", tc.timestamp, tc.max, out.OldStyleOffsets, tc.want)
			}
		}
	}
}

func TestListOffsetsErrors(t *testing.T) {
	h := newHarness(t, Config{})
	dpCreateTopic(t, h, "loe", 1)
	if out := dpListOffsets(t, h, 8, "missing", 0, -1, nil); out.ErrorCode != kerr.UnknownTopicOrPartition.Code || out.Offset != -1 {
		t.Fatalf("unknown topic: %+v", out)
	}
	if out := dpListOffsets(t, h, 0, "missing", 0, -1, nil); out.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("v0 unknown topic: %+v", out)
	}
	epoch := func(r *kmsg.ListOffsetsRequest) { r.Topics[0].Partitions[0].CurrentLeaderEpoch = 5 }
	if out := dpListOffsets(t, h, 4, "loe", 0, -1, epoch); out.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Fatalf("newer epoch: %+v", out)
	}
	if out := dpListOffsets(t, h, 3, "loe", 0, -1, epoch); out.ErrorCode != 0 {
		t.Fatalf("v3 has no current epoch: %+v", out)
	}
	dup := func(r *kmsg.ListOffsetsRequest) {
		r.Topics[0].Partitions = append(r.Topics[0].Partitions, r.Topics[0].Partitions[0])
	}
	if out := dpListOffsets(t, h, 2, "loe", 0, -1, dup); out.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("duplicate partition: %+v", out)
	}
	// A follower (replica id >= 0) may see up to the log end offset; here
	// it is the high watermark too.
	dpMustProduce(t, h, "loe", 0, dpBatch(t, "x", 2, dpBatchOptions{}))
	if out := dpListOffsets(t, h, 8, "loe", 0, -1, func(r *kmsg.ListOffsetsRequest) { r.ReplicaID = 2 }); out.Offset != 2 {
		t.Fatalf("follower latest: %+v", out)
	}
}
