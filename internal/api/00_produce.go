package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
var produceHandler = handler{key: 0, minVersion: 0, maxVersion: 12, serve: serveProduce, serveDeferred: startProduce}

// produceMaxConcurrentWaits bounds the goroutines one request runs to
// wait for its partitions' syncs. Each waits for an fsync, and the logs
// syncing at once share one syncfs (log.SharedSync), so the partitions
// of a request are waited for side by side rather than in turn; past the
// bound, starting the next partition's wait waits for one of them to
// finish (every partition is written before the first wait starts, so
// the later ones mostly find their rounds covered by a syncfs already
// run; measured before that was so: at 32, 100 topics × 100
// partitions with 10 records per partition in flight reached 11–14 MB/s;
// at 1,024, 39–48, and 4,096: 37–52, no better; docs/testing.md). The cost
// is memory: a waiting goroutine holds a few KiB of stack, so a request
// holds at most a few MiB, times the requests a connection may have in
// flight (netserver.DefaultMaxInFlightPerConn). A variable only so that
// a test can cross it with a few dozen partitions.
var produceMaxConcurrentWaits = 1024

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

// serveProduce answers a produce once every append has finished.
func serveProduce(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	done := make(chan struct{})
	resp, pending, err := startProduce(ctx, b, r, func(kmsg.Response) { close(done) })
	if pending {
		<-done
	}
	return resp, err
}

// startProduce starts a produce's appends and returns once each is queued
// in its partition's log (or failed), before their writes and fsyncs: the
// connection's next produce then queues behind them and shares their
// write round, as a pipelining client (five requests in flight) expects.
// With pending it has not finished: finished is called with the response
// (from another goroutine) once every append is durable and, for
// acks=all, replicated. acks=0 and a request with nothing to append finish
// before it returns (pending false; finished is not called).
func startProduce(ctx context.Context, b *Broker, r *Request, finished func(kmsg.Response)) (kmsg.Response, bool, error) {
	req := r.Body.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	appends, refused, rejectCode, rejectErr := produceAppends(b, r, req, resp)
	// The local append is never cut short: the records alias the request
	// frame, which the network server keeps until the response is done,
	// so every append must finish first; and an append is a local write,
	// like Kafka's, which bounds only the wait for replication (acks=all
	// across replicas) by timeout_ms. A client that goes away mid-request
	// does not cancel its appends either: what was read is appended, as
	// Kafka does (an acks=0 producer's last request before it exits).
	// acks=all waits for the ISR at most timeout_ms (Kafka's delayed
	// produce), measured from here as Kafka measures it from the append.
	waitCtx, cancel := context.WithTimeout(ctx, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond)
	if req.Acks != 0 && len(appends) > 0 {
		produceAppendAll(waitCtx, b, appends, func() {
			cancel()
			finished(resp)
		})
		return resp, true, nil
	}
	produceAppendAll(waitCtx, b, appends, nil)
	cancel()
	if req.Acks != 0 {
		return resp, false, nil
	}
	err := produceFirstError(appends)
	if refused != nil {
		err = refused
	}
	if rejectCode != 0 || rejectErr != nil {
		err = fmt.Errorf("code %d: %w", rejectCode, rejectErr)
	}
	if err != nil {
		// Kafka closes an acks=0 producer's connection when a partition
		// failed: the only way to tell it to refresh its metadata.
		return nil, false, fmt.Errorf("acks=0 produce failed, closing the connection: %w", err)
	}
	return nil, false, nil // appended; acks=0 gets no response
}

// produceAppends checks the request and its principal's rights, answers
// the partitions refused outright in resp, and lists the appends to run.
// refused is the first authorization failure, for acks=0.
func produceAppends(b *Broker, r *Request, req *kmsg.ProduceRequest, resp *kmsg.ProduceResponse) (
	appends []*produceAppend, refused error, rejectCode int16, rejectErr error) {
	rejectCode, rejectErr = produceRejection(req)
	z := b.authz(r)
	if req.TransactionID != nil && rejectCode == 0 {
		// Kafka checks the transactional id before anything else, so a
		// producer without WRITE on it learns nothing about the topics.
		if err := z.transactionalID(auth.OpWrite, *req.TransactionID); err != nil {
			rejectErr = err
		}
	}
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
	return appends, refused, rejectCode, rejectErr
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

// produceAppendAll appends every partition. It queues them in their logs
// one after the other (produceQueueOrder), on the calling goroutine (so
// the connection's next produce lands behind them), then writes each one's
// batches to its log file, and only then waits for each one's sync on a
// goroutine of its own: the partitions' fsyncs overlap, and as they all
// begin after every write of the request, one syncfs of the log directory
// covers them all (log.SharedSync). It returns once every append is
// written or has failed; with finished nil only when every append has
// finished, otherwise the last to finish fills the responses and calls
// finished.
func produceAppendAll(ctx context.Context, b *Broker, appends []*produceAppend, finished func()) {
	var running atomic.Int32
	running.Store(int32(len(appends)) + 1) // +1: the queueing below
	done := func() {
		if running.Add(-1) == 0 {
			produceFill(b, appends)
			if finished != nil {
				finished()
			}
		}
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, produceMaxConcurrentWaits)
	// wait writes the appends queued so far and starts their waits.
	wait := func(started []produceStarted) {
		for _, s := range started {
			s.pending.Write()
		}
		for _, s := range started {
			slots <- struct{}{}
			wg.Go(func() {
				s.a.result, s.a.err = produceWait(ctx, b, s.a, s.pending)
				s.end()
				<-slots
				done()
			})
		}
	}
	started := make([]produceStarted, 0, len(appends))
	for _, a := range produceQueueOrder(appends) {
		if n := len(started); n > 0 && started[n-1].a.topic == a.topic && started[n-1].a.partition == a.partition {
			// The partition is listed again. Its gate is held shared
			// already, and holding it a second time waits behind a
			// leadership change or checkpoint waiting for it, which waits
			// for the first hold to end: that one's wait must begin
			// first. (A request listing a partition twice shares fewer
			// syncs.)
			wait(started)
			started = started[:0]
		}
		pending, end, err := produceStart(ctx, b, a)
		if err != nil {
			a.err = err
			done()
			continue
		}
		started = append(started, produceStarted{a, pending, end})
	}
	wait(started)
	if finished != nil {
		done()
		return
	}
	wg.Wait()
	done()
}

// produceQueueOrder is the order a request's appends are queued in: by
// topic and partition. A queued append holds its partition's gate shared
// until its wait ends, and the waits begin only once every partition is
// queued; a leadership change waiting for a gate blocks new shared holders,
// so two requests queueing the same partitions in opposite orders, each
// behind such a change, would wait for each other for ever. In one order
// for every request, the one holding the highest gate can always go on.
// Each partition's own appends stay in request order (the sort is stable).
func produceQueueOrder(appends []*produceAppend) []*produceAppend {
	if len(appends) < 2 {
		return appends
	}
	order := slices.Clone(appends)
	slices.SortStableFunc(order, func(x, y *produceAppend) int {
		return cmp.Or(strings.Compare(x.topic, y.topic), cmp.Compare(x.partition, y.partition))
	})
	return order
}

// produceStarted is an append queued in its partition's log.
type produceStarted struct {
	a       *produceAppend
	pending *partition.PendingProduce
	end     func()
}

// produceWait waits for one partition's append. It runs outside the
// connection's goroutine and so outside its panic recovery: a panic here
// fails this partition's append rather than taking the broker down.
func produceWait(ctx context.Context, b *Broker, a *produceAppend, pending *partition.PendingProduce) (res partition.AppendResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			b.Logger.Error("produce wait panicked", "topic", a.topic, "partition", a.partition, "panic", r, "stack", string(debug.Stack()))
			res, err = partition.AppendResult{}, fmt.Errorf("produce to %s-%d: panic while waiting: %v", a.topic, a.partition, r)
		}
	}()
	return pending.Wait(ctx)
}

// produceFill writes each append's result into its partition's response.
func produceFill(b *Broker, appends []*produceAppend) {
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

// produceStart queues one partition's batches. end must be called after
// the pending produce's Wait.
func produceStart(ctx context.Context, b *Broker, a *produceAppend) (pending *partition.PendingProduce, end func(), err error) {
	if a.records == nil {
		return nil, nil, fmt.Errorf("null records: %w", record.ErrCorrupt)
	}
	p, err := b.Partitions.Partition(a.topic, a.partition)
	if err != nil {
		return nil, nil, err
	}
	guard, producerID, err := verifyTxnProduce(ctx, b, a, p)
	if err != nil {
		return nil, nil, err
	}
	end = func() {}
	if guard != 0 {
		end = func() { p.EndTxnVerification(producerID, guard) }
	}
	pending, err = p.StartProduce(a.records, partition.ProduceOptions{AcksAll: a.acks == -1, Guard: guard})
	if err != nil {
		end()
		return nil, nil, err
	}
	return pending, end, nil
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
