package api

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/record"
)

// Produce v0–12. v0–2 are advertised only because librdkafka enables
// compression when the range includes them (DESIGN.md §9); they carry old
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

	result partition.AppendResult
	err    error
}

func serveProduce(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	rejectCode, rejectErr := produceRejection(req)
	var appends []*produceAppend
	for _, t := range req.Topics {
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
			default:
				appends = append(appends, &produceAppend{topic: t.Topic, partition: p.Partition, records: p.Records, out: out})
			}
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if req.Acks == -1 && req.TimeoutMillis > 0 {
		// timeout_ms bounds waiting for replication, so Kafka applies it
		// to acks=all only; appends not finished by then answer
		// REQUEST_TIMED_OUT (they may still complete, as in Kafka).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(req.TimeoutMillis)*time.Millisecond)
		defer cancel()
	}
	produceAppendAll(ctx, b, appends)
	if req.Acks == 0 {
		return nil, nil // appended; acks=0 gets no response
	}
	return resp, nil
}

// produceRejection is the error every partition of the request gets, if
// any: a protocol-level code with no domain error, or a domain error.
func produceRejection(req *kmsg.ProduceRequest) (int16, error) {
	switch {
	case req.Version <= 2:
		return kerr.UnsupportedVersion.Code, fmt.Errorf("produce v%d carries old message formats; use v3 or later", req.Version)
	case req.Acks != -1 && req.Acks != 0 && req.Acks != 1:
		return kerr.InvalidRequiredAcks.Code, fmt.Errorf("acks %d: must be -1, 0 or 1", req.Acks)
	case req.TransactionID != nil:
		return 0, fmt.Errorf("transactional id %q: %w", *req.TransactionID, partition.ErrTransactionsUnsupported)
	}
	return 0, nil
}

func produceFail(out *kmsg.ProduceResponseTopicPartition, code int16, err error) {
	out.ErrorCode = code
	out.ErrorMessage = errorMessage(err)
	out.BaseOffset, out.LogAppendTime, out.LogStartOffset = -1, -1, -1
}

// produceAppendAll appends every partition, at most
// produceMaxConcurrentAppends at a time, and fills their responses. When ctx
// ends first, partitions not finished answer with its error (a timeout);
// their workers finish on their own and start nothing new.
func produceAppendAll(ctx context.Context, b *Broker, appends []*produceAppend) {
	if len(appends) == 0 {
		return
	}
	var mu sync.Mutex
	finished := make([]bool, len(appends))
	next := make(chan int, len(appends))
	for i := range appends {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(len(appends), produceMaxConcurrentAppends) {
		wg.Go(func() {
			for i := range next {
				a := appends[i]
				result, err := produceOne(ctx, b, a)
				mu.Lock()
				a.result, a.err, finished[i] = result, err, true
				mu.Unlock()
			}
		})
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-ctx.Done():
	}
	mu.Lock()
	defer mu.Unlock()
	for i, a := range appends {
		err := a.err
		if !finished[i] {
			err = fmt.Errorf("produce to %s-%d: %w", a.topic, a.partition, ctx.Err())
		}
		if err != nil {
			produceFail(a.out, errorCode(err), err)
			continue
		}
		a.out.BaseOffset = a.result.BaseOffset
		a.out.LogAppendTime = a.result.LogAppendTimeMs
		a.out.LogStartOffset = a.result.LogStartOffset
	}
}

func produceOne(ctx context.Context, b *Broker, a *produceAppend) (partition.AppendResult, error) {
	if err := ctx.Err(); err != nil {
		return partition.AppendResult{}, err
	}
	if a.records == nil {
		return partition.AppendResult{}, fmt.Errorf("null records: %w", record.ErrCorrupt)
	}
	p, err := b.Partitions.Partition(a.topic, a.partition)
	if err != nil {
		return partition.AppendResult{}, err
	}
	return p.Append(a.records)
}
