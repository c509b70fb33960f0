package peer

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/partition"
)

// addPartitionsToTxnVerifyVersion is the first AddPartitionsToTxn version
// with the broker-to-broker batch form and verify_only (KIP-890 part 1).
const addPartitionsToTxnVerifyVersion = 4

// TxnVerifier asks transaction coordinators, on behalf of a partition
// leader, whether a transactional produce belongs to an ongoing
// transaction: AddPartitionsToTxn v4 with verify_only=true. It keeps one
// connection per coordinator broker. It satisfies api.TxnVerifier.
type TxnVerifier struct {
	// Locate returns the address of the broker leading the transactional
	// id's __transaction_state partition.
	Locate  func(transactionalID string) (addr string, err error)
	Options Options

	mu    sync.Mutex
	conns map[string]*verifierConn
}

type verifierConn struct {
	conn *Conn
	// verifyVersion is the newest AddPartitionsToTxn version the broker
	// advertises, if at least 4; 0 when it cannot verify.
	verifyVersion int16
}

// VerifyTxnPartition answers nil when the coordinator has the partition in
// the producer's ongoing transaction. A coordinator that does not serve
// the verify form (its ApiVersions lacks AddPartitionsToTxn v4, or it
// answers UNSUPPORTED_VERSION) gives partition.ErrTxnVerificationUnsupported,
// so the produce goes ahead as it did before KIP-890. A coordinator that
// cannot be reached, or is moving, gives partition.ErrNotEnoughReplicas, as
// Kafka answers a produce then: retriable for every client.
func (v *TxnVerifier) VerifyTxnPartition(ctx context.Context, transactionalID string, producerID int64, producerEpoch int16, topic string, part int32) error {
	addr, err := v.Locate(transactionalID)
	if err != nil {
		return fmt.Errorf("transaction coordinator for %q: %v: %w", transactionalID, err, partition.ErrNotEnoughReplicas)
	}
	vc, err := v.conn(ctx, addr)
	if err != nil {
		return fmt.Errorf("transaction coordinator %s: %v: %w", addr, err, partition.ErrNotEnoughReplicas)
	}
	if vc.verifyVersion == 0 {
		return partition.ErrTxnVerificationUnsupported
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = vc.verifyVersion
	txn := kmsg.NewAddPartitionsToTxnRequestTransaction()
	txn.TransactionalID, txn.ProducerID, txn.ProducerEpoch, txn.VerifyOnly = transactionalID, producerID, producerEpoch, true
	rt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	rt.Topic, rt.Partitions = topic, []int32{part}
	txn.Topics = append(txn.Topics, rt)
	req.Transactions = append(req.Transactions, txn)
	kresp, err := vc.conn.Request(ctx, req)
	if err != nil {
		v.drop(addr, vc)
		return fmt.Errorf("verify with %s: %v: %w", addr, err, partition.ErrNotEnoughReplicas)
	}
	return verifyAnswer(kresp.(*kmsg.AddPartitionsToTxnResponse), transactionalID, topic, part)
}

// verifyAnswer reads the partition's code out of the response.
func verifyAnswer(resp *kmsg.AddPartitionsToTxnResponse, transactionalID, topic string, part int32) error {
	if resp.ErrorCode != 0 {
		return verifyError(resp.ErrorCode)
	}
	for _, txn := range resp.Transactions {
		if txn.TransactionalID != transactionalID {
			continue
		}
		for _, t := range txn.Topics {
			for _, p := range t.Partitions {
				if t.Topic == topic && p.Partition == part {
					return verifyError(p.ErrorCode)
				}
			}
		}
	}
	return fmt.Errorf("coordinator's answer does not name %s-%d: %w", topic, part, partition.ErrNotEnoughReplicas)
}

// verifyError turns a coordinator's code into the domain error the produce
// path maps back to a client code.
func verifyError(code int16) error {
	err := kerr.ErrorForCode(code)
	switch {
	case code == 0:
		return nil
	case errors.Is(err, kerr.UnsupportedVersion):
		return partition.ErrTxnVerificationUnsupported
	case errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.ProducerFenced):
		return fmt.Errorf("coordinator: %v: %w", err, partition.ErrInvalidProducerEpoch)
	case errors.Is(err, kerr.InvalidTxnState), errors.Is(err, kerr.InvalidProducerIDMapping), errors.Is(err, kerr.TransactionalIDNotFound):
		return fmt.Errorf("coordinator: %v: %w", err, partition.ErrInvalidTxnState)
	default:
		// NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, LOAD_IN_PROGRESS,
		// CONCURRENT_TRANSACTIONS...: Kafka answers the produce with
		// NOT_ENOUGH_REPLICAS, which every client retries.
		return fmt.Errorf("coordinator: %v: %w", err, partition.ErrNotEnoughReplicas)
	}
}

// conn returns the connection to addr, dialling it and reading its
// ApiVersions when there is none.
func (v *TxnVerifier) conn(ctx context.Context, addr string) (*verifierConn, error) {
	v.mu.Lock()
	vc, ok := v.conns[addr]
	v.mu.Unlock()
	if ok {
		return vc, nil
	}
	c, err := Dial(ctx, addr, v.Options)
	if err != nil {
		return nil, err
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = 3
	req.ClientSoftwareName, req.ClientSoftwareVersion = "sluice-txn-verifier", "1"
	kresp, err := c.Request(ctx, req)
	if err != nil {
		c.Close()
		return nil, err
	}
	vc = &verifierConn{conn: c}
	for _, k := range kresp.(*kmsg.ApiVersionsResponse).ApiKeys {
		if k.ApiKey == 24 && k.MaxVersion >= addPartitionsToTxnVerifyVersion {
			vc.verifyVersion = min(k.MaxVersion, kmsg.NewPtrAddPartitionsToTxnRequest().MaxVersion())
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conns == nil {
		v.conns = map[string]*verifierConn{}
	}
	if old, ok := v.conns[addr]; ok {
		c.Close() // another call dialled first
		return old, nil
	}
	v.conns[addr] = vc
	return vc, nil
}

func (v *TxnVerifier) drop(addr string, vc *verifierConn) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.conns[addr] == vc {
		delete(v.conns, addr)
	}
	vc.conn.Close()
}

// Close closes every connection.
func (v *TxnVerifier) Close() {
	v.mu.Lock()
	defer v.mu.Unlock()
	for addr, vc := range v.conns {
		vc.conn.Close()
		delete(v.conns, addr)
	}
}
