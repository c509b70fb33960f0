package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/peer"
)

// startTxnCoordinator starts the transaction coordinator on the
// partitions of __transaction_state this node leads.
func (n *Node) startTxnCoordinator() error {
	cfg := n.opts.Config
	n.txnPeers = &peerPool{n: n, clientID: fmt.Sprintf("sluice-txn-%d", n.meta.NodeID), idle: map[int32][]*peer.Conn{}}
	n.producerIDs = &producerIDBlocks{session: n.session}
	var err error
	n.txns, err = coord.StartTxn(coord.TxnOptions{
		NodeID: n.meta.NodeID, Partitions: n.parts, Image: n.cp.Image,
		CreateTransactionTopic: n.createTransactionTopic,
		NextProducerID:         n.producerIDs.NextProducerID,
		Markers:                &txnMarkerWriter{peers: n.txnPeers}, Clock: n.opts.Clock, Logger: n.log,
		Config: coord.TxnConfig{
			TransactionTopicNumPartitions: cfg.Int32(config.TransactionStateLogNumPartitions),
			MaxTimeoutMs:                  cfg.Int32(config.TransactionMaxTimeoutMs),
			TransactionalIDExpirationMs:   cfg.Int64(config.TransactionalIDExpirationMs),
			AbortTimedOutIntervalMs:       cfg.Int64(config.TransactionAbortTimedOutCleanupIntervalMs),
			RemoveExpiredIntervalMs:       cfg.Int64(config.TransactionRemoveExpiredCleanupIntervalMs),
			OffsetsTopicNumPartitions:     cfg.Int32(config.OffsetsTopicNumPartitions),
		},
	})
	if err != nil {
		return fmt.Errorf("transaction coordinator: %w", err)
	}
	return nil
}

// createTransactionTopic creates __transaction_state through the
// controller, as Kafka's brokers do on the first FindCoordinator of a
// transactional id. The replication factor is capped at the live brokers
// (see offsetsReplicationFactor), and min.insync.replicas at the
// replication factor: Kafka's default of 2 on a topic of one replica
// would refuse every transaction.
func (n *Node) createTransactionTopic(ctx context.Context) error {
	cfg := n.opts.Config
	rf := offsetsReplicationFactor(int16(cfg.Int32(config.TransactionStateLogReplicationFactor)), n.cp.Image())
	minISR := min(cfg.Int32(config.TransactionStateLogMinISR), int32(rf))
	configs := []controller.ConfigEntry{{Name: "min.insync.replicas", Value: strconv.Itoa(int(minISR))}}
	for k, v := range coord.TransactionTopicConfigs {
		configs = append(configs, controller.ConfigEntry{Name: k, Value: v})
	}
	sort.Slice(configs, func(i, j int) bool { return configs[i].Name < configs[j].Name })
	resp, err := n.cp.Submit(ctx, kraft.CreateTopics{Request: controller.CreateTopicsRequest{
		Topics: []controller.CreatableTopic{{
			Name: coord.TransactionStateTopic, NumPartitions: cfg.Int32(config.TransactionStateLogNumPartitions),
			ReplicationFactor: rf, Configs: configs,
		}},
	}})
	if err != nil {
		return fmt.Errorf("create %s: %w", coord.TransactionStateTopic, err)
	}
	result := resp.(controller.CreateTopicsResponse).Topics[0]
	if result.Err != nil && !errors.Is(result.Err, controller.ErrTopicExists) {
		return fmt.Errorf("create %s: %w", coord.TransactionStateTopic, result.Err)
	}
	return nil
}

// maxIdlePeerConns bounds the connections a peerPool keeps open to one
// broker; callers beyond it dial their own, closed after use.
const maxIdlePeerConns = 4

// writeTxnMarkersVersion is the WriteTxnMarkers version sent: v1, the
// flexible one every Kafka since 2.8 serves (v2 adds KIP-890's
// transaction version, which this coordinator does not use).
const writeTxnMarkersVersion = 1

// peerPool keeps Kafka-protocol connections to other brokers (and to this
// one) for the transaction coordinator's markers. Each connection carries
// one request at a time, so transactions ending at once use several.
type peerPool struct {
	n        *Node
	clientID string

	mu     sync.Mutex
	idle   map[int32][]*peer.Conn
	closed bool
}

// request sends req to broker over a pooled connection; a connection that
// failed is closed, not returned to the pool.
func (p *peerPool) request(ctx context.Context, broker int32, req kmsg.Request) (kmsg.Response, error) {
	c, err := p.conn(ctx, broker)
	if err != nil {
		return nil, err
	}
	resp, err := c.Request(ctx, req)
	if err != nil {
		c.Close()
		return nil, err
	}
	p.release(broker, c)
	return resp, nil
}

func (p *peerPool) conn(ctx context.Context, broker int32) (*peer.Conn, error) {
	p.mu.Lock()
	if conns := p.idle[broker]; len(conns) > 0 {
		c := conns[len(conns)-1]
		p.idle[broker] = conns[:len(conns)-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	b, ok := p.n.cp.Image().Broker(broker)
	if !ok || len(b.Listeners) == 0 {
		return nil, fmt.Errorf("broker %d: no registered listener", broker)
	}
	l := interBrokerEndpoint(b, p.n.opts.Config.InterBrokerListener())
	opts, err := p.n.dialOptions(ctx, l)
	if err != nil {
		return nil, fmt.Errorf("broker %d listener %s: %w", broker, l.Name, err)
	}
	opts.ClientID = p.clientID
	return peer.Dial(ctx, net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))), opts)
}

func (p *peerPool) release(broker int32, c *peer.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle[broker]) >= maxIdlePeerConns {
		c.Close()
		return
	}
	p.idle[broker] = append(p.idle[broker], c)
}

func (p *peerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, conns := range p.idle {
		for _, c := range conns {
			c.Close()
		}
	}
	p.idle = nil
}

// txnMarkerWriter sends WriteTxnMarkers to partition leaders, this node
// included: its own partitions' markers go through its own listener, so
// there is one path to test.
type txnMarkerWriter struct {
	peers *peerPool
}

// WriteTxnMarkers implements coord.TxnMarkerWriter.
func (w *txnMarkerWriter) WriteTxnMarkers(ctx context.Context, broker int32, m coord.TxnMarker) ([]error, error) {
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	req.Version = writeTxnMarkersVersion
	marker := kmsg.NewWriteTxnMarkersRequestMarker()
	marker.ProducerID, marker.ProducerEpoch, marker.Committed, marker.CoordinatorEpoch = m.ProducerID, m.ProducerEpoch, m.Commit, m.CoordinatorEpoch
	for _, tp := range m.Partitions {
		if n := len(marker.Topics); n > 0 && marker.Topics[n-1].Topic == tp.Topic {
			marker.Topics[n-1].Partitions = append(marker.Topics[n-1].Partitions, tp.Partition)
			continue
		}
		marker.Topics = append(marker.Topics, kmsg.WriteTxnMarkersRequestMarkerTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
	}
	req.Markers = []kmsg.WriteTxnMarkersRequestMarker{marker}
	resp, err := w.peers.request(ctx, broker, req)
	if err != nil {
		return nil, err
	}
	codes := map[coord.TxnTopicPartition]int16{}
	for _, rm := range resp.(*kmsg.WriteTxnMarkersResponse).Markers {
		for _, t := range rm.Topics {
			for _, p := range t.Partitions {
				codes[coord.TxnTopicPartition{Topic: t.Topic, Partition: p.Partition}] = p.ErrorCode
			}
		}
	}
	errs := make([]error, len(m.Partitions))
	for i, tp := range m.Partitions {
		code, ok := codes[tp]
		if !ok {
			errs[i] = fmt.Errorf("%w: broker %d did not answer for %s-%d", coord.ErrTxnMarkerRetriable, broker, tp.Topic, tp.Partition)
			continue
		}
		errs[i] = markerError(code)
	}
	return errs, nil
}

// markerError sorts a partition leader's answer as Kafka's
// TransactionMarkerRequestCompletionHandler does: passing errors are
// retried, a stale epoch stops this coordinator, anything else gives the
// partition up.
func markerError(code int16) error {
	if code == 0 {
		return nil
	}
	err := kerr.ErrorForCode(code)
	switch err {
	case kerr.UnknownTopicOrPartition, kerr.NotLeaderForPartition, kerr.NotEnoughReplicas,
		kerr.NotEnoughReplicasAfterAppend, kerr.RequestTimedOut, kerr.KafkaStorageError, kerr.LeaderNotAvailable:
		return fmt.Errorf("%w: %v", coord.ErrTxnMarkerRetriable, err)
	case kerr.InvalidProducerEpoch, kerr.TransactionCoordinatorFenced:
		return fmt.Errorf("%w: %v", coord.ErrTxnMarkerFenced, err)
	default:
		return err
	}
}
