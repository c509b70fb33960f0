package node

import (
	"fmt"
	"net"
	"strconv"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/peer"
)

// transactionStateTopic is Kafka's topic of transaction coordinator state;
// a transactional id belongs to the coordinator leading
// PartitionFor(id, its partition count), as with groups.
const transactionStateTopic = "__transaction_state"

// newTxnVerifier is the partition leaders' link to transaction
// coordinators for KIP-890's produce verification.
func (n *Node) newTxnVerifier() *peer.TxnVerifier {
	return &peer.TxnVerifier{Locate: n.locateTxnCoordinator, Options: n.interBrokerPeerOptions(fmt.Sprintf("sluice-txn-verifier-%d", n.meta.NodeID))}
}

// locateTxnCoordinator finds the address of the broker leading the
// transactional id's __transaction_state partition in the newest image.
func (n *Node) locateTxnCoordinator(transactionalID string) (string, error) {
	img := n.cp.Image()
	topic, ok := img.Topic(transactionStateTopic)
	if !ok || len(topic.Partitions) == 0 {
		return "", fmt.Errorf("no %s topic yet", transactionStateTopic)
	}
	index := coord.PartitionFor(transactionalID, int32(len(topic.Partitions)))
	pi, ok := img.Partition(transactionStateTopic, index)
	if !ok || pi.Leader < 0 {
		return "", fmt.Errorf("%s-%d has no leader", transactionStateTopic, index)
	}
	b, ok := img.Broker(pi.Leader)
	if !ok || len(b.Listeners) == 0 {
		return "", fmt.Errorf("broker %d leading %s-%d has no registered listener", pi.Leader, transactionStateTopic, index)
	}
	l := interBrokerEndpoint(b, n.opts.Config.InterBrokerListener())
	return net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))), nil
}
