package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/config"
)

func TestDescribeLogDirs(t *testing.T) {
	h := newHarness(t, Config{Static: map[string]string{config.LogDirs: "/var/lib/sluice,/unused"}})
	dpCreateTopic(t, h, "orders", 2)
	dpCreateTopic(t, h, "empty", 1)
	batch := dpBatch(t, "a", 10, dpBatchOptions{valueSize: 100})
	dpMustProduce(t, h, "orders", 1, batch)

	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrDescribeLogDirsRequest()
		req.Version = v
		resp := h.do(req).(*kmsg.DescribeLogDirsResponse)
		if len(resp.Dirs) != 1 || resp.Dirs[0].Dir != "/var/lib/sluice" || resp.Dirs[0].ErrorCode != 0 {
			t.Fatalf("v%d dirs %+v", v, resp.Dirs)
		}
		sizes := map[string]map[int32]int64{}
		for _, rt := range resp.Dirs[0].Topics {
			sizes[rt.Topic] = map[int32]int64{}
			for _, p := range rt.Partitions {
				sizes[rt.Topic][p.Partition] = p.Size
			}
		}
		total, usable := resp.Dirs[0].TotalBytes, resp.Dirs[0].UsableBytes
		if v < 4 && (total != -1 || usable != -1) {
			t.Errorf("v%d volume sizes %d/%d set, but the version has no such fields", v, total, usable)
		}
		if v >= 4 && (total <= 0 || usable < 0 || usable > total) {
			t.Errorf("v%d volume sizes total %d, usable %d: want statfs of the log dir, 0 <= usable <= total", v, total, usable)
		}
		if got := sizes["orders"][1]; got != int64(len(batch)) {
			t.Errorf("v%d: orders/1 size %d, want the batch's %d bytes", v, got, len(batch))
		}
		if got, ok := sizes["orders"][0]; !ok || got != 0 {
			t.Errorf("v%d: orders/0 size %d (listed %v), want 0", v, got, ok)
		}
		if _, ok := sizes["empty"][0]; !ok {
			t.Errorf("v%d: all topics requested but empty/0 missing: %v", v, sizes)
		}
	}

	// Named partitions only; unknown topics and partitions are left out.
	req := kmsg.NewPtrDescribeLogDirsRequest()
	req.Version = 4
	rt := kmsg.NewDescribeLogDirsRequestTopic()
	rt.Topic, rt.Partitions = "orders", []int32{1, 7}
	missing := kmsg.NewDescribeLogDirsRequestTopic()
	missing.Topic, missing.Partitions = "nope", []int32{0}
	req.Topics = []kmsg.DescribeLogDirsRequestTopic{rt, missing}
	resp := h.do(req).(*kmsg.DescribeLogDirsResponse)
	topics := resp.Dirs[0].Topics
	if len(topics) != 1 || topics[0].Topic != "orders" || len(topics[0].Partitions) != 1 || topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("filtered: %+v", topics)
	}
}
