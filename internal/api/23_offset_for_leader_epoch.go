package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// OffsetForLeaderEpoch v2–4: the end offset of a leader epoch, from the
// partition's leader-epoch cache. Consumers ask it after a leader change to
// detect log truncation (KIP-320); followers to find where to truncate.
// v2 is the first with current_leader_epoch, which clients send since
// Kafka 2.1.
var offsetForLeaderEpochHandler = handler{key: 23, minVersion: 2, maxVersion: 4, serve: serveOffsetForLeaderEpoch}

func serveOffsetForLeaderEpoch(_ context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	// A follower (replica id set, v3+) needs CLUSTER_ACTION, refused on
	// every partition as Kafka does; a consumer DESCRIBE on each topic.
	z := b.authz(r)
	var replicaErr error
	if req.Version >= 3 && req.ReplicaID >= 0 {
		replicaErr = z.cluster(auth.OpClusterAction)
	}
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
		rt.Topic = t.Topic
		denied := replicaErr
		if denied == nil && (req.Version < 3 || req.ReplicaID < 0) {
			denied = z.topic(auth.OpDescribe, t.Topic)
		}
		for _, rp := range t.Partitions {
			out := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			out.Partition = rp.Partition
			out.LeaderEpoch, out.EndOffset = -1, -1
			if denied != nil {
				out.ErrorCode = errorCode(denied)
				rt.Partitions = append(rt.Partitions, out)
				continue
			}
			p, err := b.Partitions.Partition(t.Topic, rp.Partition)
			if err == nil {
				err = p.CheckLeaderEpoch(rp.CurrentLeaderEpoch)
			}
			if err != nil {
				out.ErrorCode = errorCode(err)
			} else {
				out.LeaderEpoch, out.EndOffset = p.EndOffsetForLeaderEpoch(rp.LeaderEpoch)
			}
			rt.Partitions = append(rt.Partitions, out)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}
