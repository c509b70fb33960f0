package node

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/peer"
)

// alterISRTimeout bounds one AlterPartition round trip to the controller;
// a leader whose proposal times out proposes again at its next check.
const alterISRTimeout = 10 * time.Second

// alterISR sends a partition leader's ISR change to the controller and
// waits until it is committed (and in this node's image) or refused.
func (n *Node) alterISR(p partition.ISRProposal) error {
	ctx, cancel := context.WithTimeout(context.Background(), alterISRTimeout)
	defer cancel()
	resp, err := n.cp.Submit(ctx, kraft.AlterPartition{Request: controller.AlterPartitionRequest{
		BrokerID: n.meta.NodeID, BrokerEpoch: n.session.brokerEpoch(),
		Partitions: []controller.AlterPartitionItem{{
			TopicID: p.TopicID, Partition: p.Partition, LeaderEpoch: p.LeaderEpoch,
			PartitionEpoch: p.PartitionEpoch, NewISR: p.NewISR,
		}},
	}})
	if err != nil {
		return fmt.Errorf("alter ISR of %s-%d: %w", p.Topic, p.Partition, err)
	}
	out := resp.(controller.AlterPartitionResponse)
	if out.Err != nil {
		return fmt.Errorf("alter ISR of %s-%d: %w", p.Topic, p.Partition, out.Err)
	}
	if len(out.Partitions) == 1 && out.Partitions[0].Err != nil {
		return fmt.Errorf("alter ISR of %s-%d: %w", p.Topic, p.Partition, out.Partitions[0].Err)
	}
	return nil
}

// dialLeader connects a replica fetcher to a broker at the address it
// registered with the controller.
func (n *Node) dialLeader(ctx context.Context, brokerID int32) (partition.LeaderClient, error) {
	b, ok := n.cp.Image().Broker(brokerID)
	if !ok || len(b.Listeners) == 0 {
		return nil, fmt.Errorf("broker %d: no registered listener", brokerID)
	}
	l := interBrokerEndpoint(b, n.opts.Config.InterBrokerListener())
	addr := net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
	// replica.fetch.response.max.bytes bounds the records asked for, but a
	// leader still returns a first batch whole when it is larger (KIP-74),
	// so the frame limit has room on top for one such batch.
	opts, err := n.dialOptions(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("broker %d listener %s: %w", brokerID, l.Name, err)
	}
	return peer.DialReplica(ctx, addr, opts)
}
