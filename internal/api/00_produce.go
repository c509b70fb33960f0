package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

// Produce v0–12. v0–2 are advertised only because librdkafka enables
// compression when the range includes them (docs/broker.md, wire compatibility); they carry old
// message formats, which we do not store, so every partition gets
// UNSUPPORTED_VERSION. v13 addresses topics by id.
var produceHandler = handler{key: 0, minVersion: 0, maxVersion: 12, serve: serveProduce}

// produceMaxConcurrentAppends bounds the appends one request runs at once.
// Each append waits for an fsync (group-committed per partition), so the
// partitions of a request are appended side by side rather than in turn.
const produceMaxConcurrentAppends = 16

// produceAppend is one partition of a produce request.
type produceAppend struct {
	topic     string
	partition int32
	records   []byte
	out       *kmsg.ProduceResponseTopicPartition
	acks      int16
	// transactionalID is the request's, nil for other producers.
	transactionalID *string

	result partition.AppendResult
	err    error
}

func serveProduce(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	rejectCode, rejectErr := produceRejection(req)
	z := b.authz(r)
	if req.TransactionID != nil && rejectCode == 0 {
		// Kafka checks the transactional id before anything else, so a
		// producer without WRITE on it learns nothing about the topics.
		if err := z.transactionalID(auth.OpWrite, *req.TransactionID); err != nil {
			rejectErr = err
		}
	}
	var appends []*produceAppend
	var refused error // the first authorization failure, for acks=0
	for _, t := range req.Topics {
		topicErr := z.topic(auth.OpWrite, t.Topic)
		if topicErr != nil && refused == nil {
			refused = topicErr
		}
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		rt.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(t.Partitions))
		for i, p := range t.Partitions {
			out := &rt.Partitions[i]
			out.Default()
			out.Partition = p.Partition
			switch {
			case rejectCode != 0:
				produceFail(out, rejectCode, rejectErr)
			case rejectErr != nil:
				produceFail(out, errorCode(rejectErr), rejectErr)
			case topicErr != nil:
				produceFail(out, errorCode(topicErr), topicErr)
			default:
				appends = append(appends, &produceAppend{topic: t.Topic, partition: p.Partition, records: p.Records, out: out, acks: req.Acks,
					transactionalID: req.TransactionID})
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	// The local append is never cut short: the records alias the request
	// frame, which the network server reuses once Serve returns, so every
	// append must finish first; and an append is a local write, like
	// Kafka's, which bounds only the wait for replication (acks=all across
	// replicas) by timeout_ms. A client that goes away mid-request does
	// not cancel its appends either: what was read is appended, as Kafka
	// does (an acks=0 producer's last request before it exits).
	// acks=all waits for the ISR at most timeout_ms (Kafka's delayed
	// produce), measured from here as Kafka measures it from the append.
	waitCtx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
	defer cancel()
	produceAppendAll(waitCtx, b, appends)
	if req.Acks == 0 {
		err := produceFirstError(appends)
		if refused != nil {
			err = refused
		}
		if rejectCode != 0 || rejectErr != nil {
			err = fmt.Errorf("code %d: %w", rejectCode, rejectErr)
		}
		if err != nil {
			// Kafka closes an acks=0 producer's connection when a
			// partition failed: the only way to tell it to refresh its
			// metadata.
			return nil, fmt.Errorf("acks=0 produce failed, closing the connection: %w", err)
		}
		return nil, nil // appended; acks=0 gets no response
	}
	return resp, nil
}

// produceFirstError is the first partition's error, if any.
func produceFirstError(appends []*produceAppend) error {
	for _, a := range appends {
		if a.err != nil {
			return a.err
		}
	}
	return nil
}

// produceRejection is the error every partition of the request gets, if
// any: a protocol-level code with no domain error, or a domain error.
func produceRejection(req *kmsg.ProduceRequest) (int16, error) {
	switch {
	case req.Version <= 2:
		return kerr.UnsupportedVersion.Code, fmt.Errorf("produce v%d carries old message formats; use v3 or later", req.Version)
	case req.Acks != -1 && req.Acks != 0 && req.Acks != 1:
		return kerr.InvalidRequiredAcks.Code, fmt.Errorf("acks %d: must be -1, 0 or 1", req.Acks)
	}
	return 0, nil
}

func produceFail(out *kmsg.ProduceResponseTopicPartition, code int16, err error) {
	out.ErrorCode = code
	out.ErrorMessage = errorMessage(err)
	out.BaseOffset, out.LogAppendTime, out.LogStartOffset = -1, -1, -1
}

// produceAppendAll appends every partition, at most
// produceMaxConcurrentAppends at a time, and fills their responses. It
// returns only when every append has finished.
func produceAppendAll(ctx context.Context, b *Broker, appends []*produceAppend) {
	if len(appends) == 0 {
		return
	}
	next := make(chan *produceAppend, len(appends))
	for _, a := range appends {
		next <- a
	}
	close(next)
	var wg sync.WaitGroup
	for range min(len(appends), produceMaxConcurrentAppends) {
		wg.Go(func() {
			for a := range next {
				a.result, a.err = produceOne(ctx, b, a)
			}
		})
	}
	wg.Wait()
	for _, a := range appends {
		if a.err != nil {
			produceFail(a.out, errorCode(a.err), a.err)
			produceRecordErrors(a.out, a.err)
			continue
		}
		a.out.BaseOffset = a.result.BaseOffset
		a.out.LogAppendTime = a.result.LogAppendTimeMs
		a.out.LogStartOffset = a.result.LogStartOffset
		if !a.result.Duplicate {
			// Kafka's MessagesIn and BytesIn: what was appended, so a
			// retried duplicate or a failed partition counts nothing.
			b.topicMetrics(a.topic).In(a.result.LastOffset-a.result.BaseOffset+1, int64(len(a.records)))
		}
	}
}

// produceRecordErrors lists the records that made the append fail, as
// Kafka's record_errors (v8+; older versions drop the field).
func produceRecordErrors(out *kmsg.ProduceResponseTopicPartition, err error) {
	var refused *partition.RecordErrors
	if !errors.As(err, &refused) {
		return
	}
	for _, r := range refused.Records {
		e := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		e.RelativeOffset = r.BatchIndex
		e.ErrorMessage = &r.Message
		out.ErrorRecords = append(out.ErrorRecords, e)
	}
}

func produceOne(ctx context.Context, b *Broker, a *produceAppend) (partition.AppendResult, error) {
	if a.records == nil {
		return partition.AppendResult{}, fmt.Errorf("null records: %w", record.ErrCorrupt)
	}
	p, err := b.Partitions.Partition(a.topic, a.partition)
	if err != nil {
		return partition.AppendResult{}, err
	}
	guard, producerID, err := verifyTxnProduce(ctx, b, a, p)
	if err != nil {
		return partition.AppendResult{}, err
	}
	if guard != 0 {
		defer p.EndTxnVerification(producerID, guard)
		if a.acks == -1 {
			return p.AppendAllVerified(ctx, a.records, guard)
		}
		return p.AppendVerified(a.records, guard)
	}
	if a.acks == -1 {
		return p.AppendAll(ctx, a.records)
	}
	return p.Append(a.records)
}

// verifyTxnProduce asks the transaction coordinator, before a
// transactional batch opens its producer's transaction on the partition,
// whether the partition is part of that producer's ongoing transaction
// (KIP-890 part 1): a produce that lost a race with an abort, or a
// zombie's, must not open a transaction nobody will end. A coordinator
// that cannot verify lets it through, as brokers did before KIP-890.
// A marker written between the check and the append voids it: the
// verification guard returned (0: none taken) makes the append refuse.
func verifyTxnProduce(ctx context.Context, b *Broker, a *produceAppend, p *partition.Partition) (guard uint64, producerID int64, err error) {
	if a.transactionalID == nil || b.TxnVerifier == nil {
		return 0, -1, nil
	}
	h, err := record.ParseHeader(a.records)
	if err != nil || !h.IsTransactional() || !p.NeedsTxnVerification(h.ProducerID, h.ProducerEpoch) {
		return 0, -1, nil // a malformed batch is refused by the append
	}
	guard = p.BeginTxnVerification(h.ProducerID)
	err = b.TxnVerifier.VerifyTxnPartition(ctx, *a.transactionalID, h.ProducerID, h.ProducerEpoch, a.topic, a.partition)
	if err == nil {
		return guard, h.ProducerID, nil
	}
	p.EndTxnVerification(h.ProducerID, guard)
	if errors.Is(err, partition.ErrTxnVerificationUnsupported) {
		return 0, -1, nil
	}
	return 0, -1, fmt.Errorf("transactional id %q, producer %d epoch %d: %w", *a.transactionalID, h.ProducerID, h.ProducerEpoch, err)
}
