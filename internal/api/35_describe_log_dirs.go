package api

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/metadata"
)

// DescribeLogDirs v0–4: the partitions this broker keeps on disk and their
// sizes, as kafka-log-dirs.sh and `sluice topic describe` show. A node has
// one log directory; partitions it does not host are left out, as Kafka
// leaves out what is not in a directory. Volume sizes (v4) come from statfs
// on the directory, and are unknown (-1) where that cannot be had.
var describeLogDirsHandler = handler{key: 35, minVersion: 0, maxVersion: 4, serve: serveDescribeLogDirs}

func serveDescribeLogDirs(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if err := b.authz(r).cluster(auth.OpDescribe); err != nil {
		// v3+ says why; before, Kafka answers with no log dirs.
		if req.Version >= 3 {
			resp.ErrorCode = errorCode(err)
		}
		return resp, nil
	}
	dir := kmsg.NewDescribeLogDirsResponseDir()
	dir.Dir = logDirOf(b)
	if req.Version >= 4 {
		dir.TotalBytes, dir.UsableBytes = logDirVolume(b)
	}
	for _, want := range logDirsWanted(b.Control.Image(), b.NodeID, req.Topics) {
		rt := kmsg.NewDescribeLogDirsResponseDirTopic()
		rt.Topic = want.topic
		for _, id := range want.partitions {
			p, err := b.Partitions.Partition(want.topic, id)
			if err != nil {
				continue // not hosted here
			}
			rp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			rp.Partition, rp.Size = id, p.Size()
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) > 0 {
			dir.Topics = append(dir.Topics, rt)
		}
	}
	resp.Dirs = append(resp.Dirs, dir)
	return resp, nil
}

// logDirVolume is the total and usable bytes of the log directory's volume,
// -1 each when unknown. A failing statfs does not fail the request: the
// partition sizes are still worth having, and the warning names the cause.
func logDirVolume(b *Broker) (totalBytes, usableBytes int64) {
	usage, err := b.Partitions.LogDirUsage()
	if err != nil {
		if !errors.Is(err, errors.ErrUnsupported) {
			b.Logger.Warn("describe log dirs: volume size unknown", "err", err)
		}
		return -1, -1
	}
	return usage.TotalBytes, usage.UsableBytes
}

type logDirTopic struct {
	topic      string
	partitions []int32
}

// logDirsWanted lists the requested partitions that exist and have this
// node among their replicas; null topics means every such partition.
func logDirsWanted(img *metadata.Image, node int32, topics []kmsg.DescribeLogDirsRequestTopic) []logDirTopic {
	onNode := func(t *metadata.TopicImage, id int32) bool {
		return id >= 0 && int(id) < len(t.Partitions) && slices.Contains(t.Partitions[id].Replicas, node)
	}
	var out []logDirTopic
	if topics == nil {
		for _, t := range img.Topics() {
			w := logDirTopic{topic: t.Name}
			for i := range t.Partitions {
				if onNode(t, int32(i)) {
					w.partitions = append(w.partitions, int32(i))
				}
			}
			out = append(out, w)
		}
		slices.SortFunc(out, func(a, b logDirTopic) int { return strings.Compare(a.topic, b.topic) })
		return out
	}
	for _, rt := range topics {
		t, ok := img.Topic(rt.Topic)
		if !ok {
			continue
		}
		w := logDirTopic{topic: rt.Topic}
		for _, id := range rt.Partitions {
			if onNode(t, id) {
				w.partitions = append(w.partitions, id)
			}
		}
		out = append(out, w)
	}
	return out
}

// logDirOf is the directory partitions live in: log.dirs' first entry, as
// this node keeps every partition there.
func logDirOf(b *Broker) string {
	dirs := b.Config.Static[config.LogDirs]
	if dirs == "" {
		dirs = b.Config.Static[config.LogDir]
	}
	first, _, _ := strings.Cut(dirs, ",")
	return first
}
