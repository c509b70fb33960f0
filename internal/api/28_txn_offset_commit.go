package api

import (
	"cmp"
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
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
// Kafka first checks with the transaction coordinator that the group was
// added to the transaction (AddOffsetsToTxn); that check belongs to the
// coordinator side and is not made here.
var txnOffsetCommitHandler = handler{key: 28, minVersion: 0, maxVersion: 3, serve: serveTxnOffsetCommit}

// TxnGroups is what TxnOffsetCommit needs of the group coordinator on top
// of Groups (*coord.Coordinator has it).
type TxnGroups interface {
	TxnCommitOffsets(ctx context.Context, req coord.TxnCommitRequest) (coord.CommitResult, error)
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
		res, err = txnOffsetCommitRun(ctx, b, creq)
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
func txnOffsetCommitRun(ctx context.Context, b *Broker, creq coord.TxnCommitRequest) (coord.CommitResult, error) {
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
	res, err := tg.TxnCommitOffsets(ctx, creq)
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
