package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/partition"
)

// TxnOffsetCommit v0–3: a transactional producer commits its consumer's
// offsets inside its transaction (KIP-98; v2 adds the leader epoch, v3 the
// member id, generation and group.instance.id of KIP-447 and is flexible).
// The group coordinator writes them to __consumer_offsets as a
// transactional batch of the producer; they become the group's offsets
// when the transaction's COMMIT marker reaches that partition and are
// dropped on ABORT (coord.Coordinator.TxnCommitOffsets). v4+ belong to
// KIP-890 part 2's transaction version 2, not served yet.
//
// As Kafka's group coordinator does (KIP-890 part 1), the transaction
// coordinator is first asked whether the producer added the group to its
// transaction (AddOffsetsToTxn): verifyTxnOffsetCommit.
var txnOffsetCommitHandler = handler{key: 28, minVersion: 0, maxVersion: 3, serve: serveTxnOffsetCommit}

// TxnGroups is what TxnOffsetCommit needs of the group coordinator on top
// of Groups (*coord.Coordinator has it).
type TxnGroups interface {
	TxnCommitOffsets(ctx context.Context, req coord.TxnCommitRequest, guard uint64) (coord.CommitResult, error)
	PartitionFor(groupID string) int32
}

var _ TxnGroups = (*coord.Coordinator)(nil)

func serveTxnOffsetCommit(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.TxnOffsetCommitRequest)
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	creq := coord.TxnCommitRequest{
		CommitRequest: coord.CommitRequest{GroupID: req.Group, GenerationID: req.Generation, MemberID: req.MemberID,
			GroupInstanceID: groupString(req.InstanceID), RetentionTimeMs: -1},
		TransactionalID: req.TransactionalID, ProducerID: req.ProducerID, ProducerEpoch: req.ProducerEpoch,
	}
	if req.Version < 3 {
		creq.GenerationID, creq.MemberID, creq.GroupInstanceID = -1, "", ""
	}
	// WRITE on the transactional id, READ on the group, then READ on each
	// topic, as in Kafka; refused topics never reach the coordinator.
	z := b.authz(r)
	refused := cmp.Or(z.transactionalID(auth.OpWrite, req.TransactionalID), z.group(auth.OpRead, req.Group))
	denied := make([]error, len(req.Topics))
	for i, t := range req.Topics {
		if denied[i] = cmp.Or(refused, z.topic(auth.OpRead, t.Topic)); denied[i] != nil {
			continue
		}
		ct := coord.CommitTopic{Name: t.Topic}
		for _, p := range t.Partitions {
			leaderEpoch := p.LeaderEpoch
			if req.Version < 2 {
				leaderEpoch = -1
			}
			ct.Partitions = append(ct.Partitions, coord.CommitPartition{Partition: p.Partition, Offset: p.Offset,
				LeaderEpoch: leaderEpoch, Metadata: groupString(p.Metadata)})
		}
		creq.Topics = append(creq.Topics, ct)
	}
	var res coord.CommitResult
	var err error
	if len(creq.Topics) > 0 {
		res, err = txnOffsetCommitRun(ctx, b, r, creq)
	}
	resp.Topics = make([]kmsg.TxnOffsetCommitResponseTopic, len(req.Topics))
	next := 0 // the coordinator's answers, in the order of the topics sent
	for i, t := range req.Topics {
		rt := &resp.Topics[i]
		rt.Default()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.TxnOffsetCommitResponseTopicPartition, len(t.Partitions))
		for j, p := range t.Partitions {
			rp := &rt.Partitions[j]
			rp.Default()
			rp.Partition = p.Partition
			switch {
			case denied[i] != nil:
				rp.ErrorCode = errorCode(denied[i])
			case err != nil:
				rp.ErrorCode = groupErrorCode(err)
			default:
				rp.ErrorCode = errorCode(res.Topics[next].Partitions[j].Err)
			}
		}
		if denied[i] == nil {
			next++
		}
	}
	return resp, nil
}

// txnOffsetCommitRun commits and checks the result has the request's
// shape, so results can be matched to partitions by position.
func txnOffsetCommitRun(ctx context.Context, b *Broker, r *Request, creq coord.TxnCommitRequest) (coord.CommitResult, error) {
	g, err := groups(b)
	if err != nil {
		return coord.CommitResult{}, err
	}
	tg, ok := g.(TxnGroups)
	if !ok {
		return coord.CommitResult{}, errNoGroupCoordinator
	}
	if creq.GenerationID < 0 {
		// As OffsetCommit: not a group under a share group's id.
		if err := errShareGroupID(b, creq.GroupID); err != nil {
			return coord.CommitResult{}, fmt.Errorf("%w: %w", coord.ErrGroupIDNotFound, err)
		}
	}
	p, guard, err := verifyTxnOffsetCommit(ctx, b, r, tg, creq)
	if err != nil {
		return coord.CommitResult{}, err
	}
	if guard != 0 {
		defer func() {
			// Appended under it, the guard is gone already; refused, it
			// goes. A call the context ended left the commit in the
			// shard, which may still decide and append it under the
			// guard: ended now, it would refuse the commit, or fail the
			// append and the shard. It is left to that append or to the
			// producer's next marker (the transaction has the partition).
			if ctx.Err() == nil {
				p.EndTxnVerification(creq.ProducerID, guard)
			}
		}()
	}
	var res coord.CommitResult
	b.awaitCoordinator(r, func() { res, err = tg.TxnCommitOffsets(ctx, creq, guard) })
	if err != nil {
		return res, fmt.Errorf("transactional commit of group %q for %q: %w", creq.GroupID, creq.TransactionalID, err)
	}
	if len(res.Topics) != len(creq.Topics) {
		return res, fmt.Errorf("coordinator answered %d of %d committed topics", len(res.Topics), len(creq.Topics))
	}
	for i, t := range creq.Topics {
		if len(res.Topics[i].Partitions) != len(t.Partitions) {
			return res, fmt.Errorf("coordinator answered %d of %d partitions of %s", len(res.Topics[i].Partitions), len(t.Partitions), t.Name)
		}
	}
	return res, nil
}

// verifyTxnOffsetCommit asks the transaction coordinator whether the
// producer (id and epoch) of the transactional id added the group's
// __consumer_offsets partition to its ongoing transaction, before the
// group coordinator writes the commit there as that producer's
// transactional batch, as Kafka's coordinator runtime does
// (scheduleTransactionalWriteOperation). Without it, a producer id the
// transaction coordinator never issued, or a commit outside any
// transaction, was written and opened a transaction on the partition that
// no marker would end. The answers are produce's (verifyTxnProduce):
// INVALID_TXN_STATE, INVALID_PRODUCER_EPOCH, or a retriable one. As there,
// it is skipped when the partition already has this producer's transaction
// open (an earlier commit in it was verified) and when the coordinator
// cannot verify; a partition not led here is left to the group
// coordinator, which answers NOT_COORDINATOR.
//
// A verified commit comes with the partition's verification guard (0:
// none), which the group coordinator appends the commit under: an EndTxn
// whose marker reaches the partition between the check and the write
// voids it, as it voids a produce's, and the commit is refused rather
// than opening a transaction nobody will end. A commit not verified
// because its transaction is open comes with partition.TxnOpenGuard, so
// that the same marker refuses it too. The caller ends the guard on p
// once the commit is answered.
func verifyTxnOffsetCommit(ctx context.Context, b *Broker, r *Request, tg TxnGroups, creq coord.TxnCommitRequest) (p *partition.Partition, guard uint64, err error) {
	if b.TxnVerifier == nil || b.Partitions == nil {
		return nil, 0, nil
	}
	index := tg.PartitionFor(creq.GroupID)
	offsets, err := b.Partitions.Partition(coord.OffsetsTopic, index)
	if err != nil {
		return nil, 0, nil
	}
	if !offsets.NeedsTxnVerification(creq.ProducerID, creq.ProducerEpoch) {
		// Verified with the transaction's first commit; it must still be
		// open when this one is written (EndTxnVerification ignores it).
		return offsets, partition.TxnOpenGuard, nil
	}
	begun := offsets.BeginTxnVerification(creq.ProducerID)
	verified := false
	defer func() {
		// Also when the coordinator panics: no verification left begun.
		if !verified {
			offsets.EndTxnVerification(creq.ProducerID, begun)
		}
	}()
	b.awaitCoordinator(r, func() {
		err = b.TxnVerifier.VerifyTxnPartition(ctx, creq.TransactionalID, creq.ProducerID, creq.ProducerEpoch, coord.OffsetsTopic, index)
	})
	if err == nil {
		verified = true
		return offsets, begun, nil
	}
	if errors.Is(err, partition.ErrTxnVerificationUnsupported) {
		return nil, 0, nil
	}
	return nil, 0, fmt.Errorf("transactional id %q, producer %d epoch %d, %s-%d: %w", creq.TransactionalID, creq.ProducerID, creq.ProducerEpoch, coord.OffsetsTopic, index, err)
}
