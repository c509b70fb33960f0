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

// produceMaxConcurrentWaits bounds the waiter goroutines one request runs
// to wait for its partitions' syncs: each takes the next partition not yet
// waited for, so a request of thousands of partitions starts (and grows
// the stacks of) at most that many goroutines, not one per partition. Under a shared sync
// (log.SharedSync) the first wait's syncfs covers every partition of the
// request, written before it, and the others find their rounds durable;
// without one, each log fdatasyncs its own file, and fdatasyncs running
// at once share the file system's journal commit, so the bound is also
// how many of them share one. A variable only so that a test can cross
// it with a few partitions.
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

	// p is the partition, found before any of the request's appends is
	// queued (produceRun.lookUpAll).
	p *partition.Partition

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
		produceAppendAll(waitCtx, b, r, appends, func() {
			cancel()
			finished(resp)
		})
		return resp, true, nil
	}
	produceAppendAll(waitCtx, b, r, appends, nil)
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
	// One allocation for every partition's append, not one each: a
	// request spread over thousands of partitions made thousands.
	total := 0
	for _, t := range req.Topics {
		total += len(t.Partitions)
	}
	slab := make([]produceAppend, 0, total)
	appends = make([]*produceAppend, 0, total)
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
				slab = append(slab, produceAppend{topic: t.Topic, partition: p.Partition, records: p.Records, out: out, acks: req.Acks,
					transactionalID: req.TransactionID})
				appends = append(appends, &slab[len(slab)-1]) // within capacity: never moves
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
// one after the other (produceQueueOrder), on the calling goroutine, so
// the connection's next produce lands behind them; the rest runs on other
// goroutines (produceRun.complete), so that the connection parses and
// queues its next pipelined produce while this one's batches are written.
// With finished nil (acks=0) it returns once every append has finished;
// otherwise once every append is queued or has failed, and the last part
// to finish fills the responses and calls finished. Before that it sets
// r.waited, the time spent waiting for durability and replication (and
// for transactional batches' verification).
func produceAppendAll(ctx context.Context, b *Broker, r *Request, appends []*produceAppend, finished func()) {
	run := &produceRun{ctx: ctx, b: b, r: r, appends: appends, finished: finished, waits: newWaitClock(b)}
	run.running.Store(1) // the queueing below
	order := produceQueueOrder(appends)
	run.lookUpAll(order)
	started := make([]produceStarted, 0, len(appends))
	for _, a := range order {
		if a.err != nil {
			continue // no such partition here, or not led here
		}
		if n := len(started); n > 0 && started[n-1].a.topic == a.topic && started[n-1].a.partition == a.partition {
			// The partition is listed again. Its gate is held shared
			// already, and holding it a second time waits behind a
			// leadership change or checkpoint waiting for it, which waits
			// for the first hold to end: that one's wait must begin
			// first. (A request listing a partition twice shares fewer
			// syncs.)
			run.start(started)
			started = make([]produceStarted, 0, len(appends))
		}
		// Guarded as the other steps are, though the connection's
		// goroutine recovers too: a panic escaping here would leave the
		// appends queued so far holding their gates for ever, their
		// records (aliasing the frame the network server then reuses)
		// queued in their logs, and the response never answered.
		var pending *partition.PendingProduce
		var end func()
		var err error
		run.guard(a, "queueing", func() { pending, end, err = produceStart(ctx, b, a, &run.waits) })
		if a.err != nil {
			continue // panicked
		}
		if err != nil {
			a.err = err
			continue
		}
		started = append(started, produceStarted{a, pending, end})
	}
	run.start(started)
	run.done()
}

// lookUpAll finds every append's partition before any append is queued,
// failing those not found. A lookup runs a Refresh when the metadata image
// moved, and the Refresh takes exclusively the gate of every partition
// whose leadership changed: done while an earlier partition of the request
// was queued, holding its gate shared until a wait that begins only after
// the loop, the Refresh (on this goroutine, or on another one this lookup
// waits for) and the produce waited for each other for ever. The node's
// controlled shutdown, which moves every leadership at once, hung on it.
func (run *produceRun) lookUpAll(order []*produceAppend) {
	for _, a := range order {
		run.guard(a, "looking up its partition", func() {
			if p, err := run.b.Partitions.Partition(a.topic, a.partition); err != nil {
				a.err = err
			} else {
				a.p = p
			}
		})
	}
}

// produceRun is a produce request's appends once queued: it writes them,
// waits for them, and answers when the last one has finished.
type produceRun struct {
	ctx      context.Context
	b        *Broker
	r        *Request
	appends  []*produceAppend
	finished func() // nil: acks=0, every part runs on the caller's goroutine
	// waits measures the waits for durability and replication, and for
	// the transaction coordinator's verification, which the
	// request_percentage quota does not charge: Kafka's handler returns
	// once its append is written, and the delayed produce waits in
	// purgatory on no request thread.
	waits waitClock
	// running counts the parts not done: each group of queued appends
	// being completed, and the queueing itself.
	running atomic.Int32
}

// start completes a group of queued appends: in the background when the
// request is answered (finished), otherwise before it returns, since an
// acks=0 produce finishes before its handler returns.
func (run *produceRun) start(group []produceStarted) {
	if len(group) == 0 {
		return
	}
	run.running.Add(1)
	if run.finished == nil {
		run.complete(group)
		return
	}
	go run.complete(group)
}

// done ends one part of the run; the last fills the responses and calls
// finished.
func (run *produceRun) done() {
	if run.running.Add(-1) != 0 {
		return
	}
	run.r.waited = run.waits.total()
	produceFill(run.b, run.appends)
	if run.finished != nil {
		run.finished()
	}
}

// complete writes every append of the group to its log, then waits for
// them in three steps, each begun only when the one before has ended for
// every append: the writes, so that the syncs all begin after them and
// one syncfs of the log directory covers them all (log.SharedSync); the
// durability waits, which let go of the partitions' gates; then the
// replication waits of acks=all, which may last until the produce
// timeout, and so must not keep another partition's finish (and its gate,
// which a leadership change or a checkpoint waits for) waiting.
func (run *produceRun) complete(group []produceStarted) {
	defer run.done()
	run.writeAll(group)
	run.waits.begin()
	defer run.waits.end()
	run.waitDurable(group)
	for _, s := range group {
		if s.a.err == nil {
			run.guard(s.a, "waiting for the ISR", func() { s.a.err = s.pending.Replicated(run.ctx, s.a.result) })
		}
	}
}

// produceWriters is how many goroutines write a large request's
// partitions to their logs at once, produceWriteChunk partitions at a
// time each. A write is mostly the kernel copying the batches into the
// page cache, and one goroutine writing thousands of partitions in turn
// kept a request's response, and the client's next request in its
// window, waiting for it while the other core idled.
const (
	produceWriters    = 2
	produceWriteChunk = 256
)

// writeAll writes every append of the group to its log, and returns
// once all are written (or failed).
func (run *produceRun) writeAll(group []produceStarted) {
	var next atomic.Int64
	write := func() {
		for {
			from := int(next.Add(produceWriteChunk) - produceWriteChunk)
			if from >= len(group) {
				return
			}
			for _, s := range group[from:min(from+produceWriteChunk, len(group))] {
				run.guard(s.a, "writing", func() { s.pending.Write() })
			}
		}
	}
	var wg sync.WaitGroup
	for range min(produceWriters, (len(group)+produceWriteChunk-1)/produceWriteChunk) - 1 {
		wg.Go(write)
	}
	write()
	wg.Wait()
}

// waitDurable waits until every append of the group is durable, on at
// most produceMaxConcurrentWaits goroutines (this one included), each
// taking the next append not yet waited for.
func (run *produceRun) waitDurable(group []produceStarted) {
	var next atomic.Int64
	wait := func() {
		for {
			i := next.Add(1) - 1
			if i >= int64(len(group)) {
				return
			}
			s := group[i]
			a := s.a
			run.guard(a, "waiting for the sync", func() { a.result, a.err = s.pending.Durable() })
			s.end()
		}
	}
	var wg sync.WaitGroup
	for range min(len(group), produceMaxConcurrentWaits) - 1 {
		wg.Go(wait)
	}
	wait()
	wg.Wait()
}

// guard runs one step of an append outside the connection's goroutine,
// and so outside its panic recovery: a panic fails this append rather
// than taking the broker down.
func (run *produceRun) guard(a *produceAppend, step string, f func()) {
	if err := produceGuard(run.b, a, step, f); err != nil {
		a.err = err
	}
}

// produceGuard runs f, a step of a's produce, and returns what a panic in
// it becomes: logged with its stack, an error naming the step (nil
// without a panic).
func produceGuard(b *Broker, a *produceAppend, step string, f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			b.Logger.Error("produce panicked", "topic", a.topic, "partition", a.partition, "step", step, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("produce to %s-%d: panic while %s: %v", a.topic, a.partition, step, r)
		}
	}()
	f()
	return nil
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
	byTopicPartition := func(x, y *produceAppend) int {
		return cmp.Or(strings.Compare(x.topic, y.topic), cmp.Compare(x.partition, y.partition))
	}
	if slices.IsSortedFunc(appends, byTopicPartition) {
		return appends
	}
	order := slices.Clone(appends)
	slices.SortStableFunc(order, byTopicPartition)
	return order
}

// produceStarted is an append queued in its partition's log.
type produceStarted struct {
	a       *produceAppend
	pending *partition.PendingProduce
	end     func()
}

// produceFill writes each append's result into its partition's response.
func produceFill(b *Broker, appends []*produceAppend) {
	for _, a := range appends {
		produceFillGuarded(b, a)
	}
}

// produceFillGuarded is produceFillOne with a panic failing the append's
// partition, as produceRun.guard fails a step: the fill runs in whichever
// part of the run finished last, usually a background goroutine outside
// the connection's panic recovery, where a panic would take the broker
// down, and the response (sent right after) must go out in any case.
func produceFillGuarded(b *Broker, a *produceAppend) {
	if err := produceGuard(b, a, "filling the response", func() { produceFillOne(b, a) }); err != nil {
		produceFail(a.out, errorCode(err), err)
		a.out.ErrorRecords = nil
	}
}

// produceFillOne writes one append's result into its partition's response.
func produceFillOne(b *Broker, a *produceAppend) {
	if a.err != nil {
		produceFail(a.out, errorCode(a.err), a.err)
		produceRecordErrors(a.out, a.err)
		return
	}
	a.out.BaseOffset = a.result.BaseOffset
	a.out.LogAppendTime = a.result.LogAppendTimeMs
	a.out.LogStartOffset = a.result.LogStartOffset
	if !a.result.Duplicate {
		produceCountIn(b, a)
	}
}

// produceCountIn counts an appended batch in Kafka's MessagesIn and BytesIn:
// what was appended, so a retried duplicate or a failed partition counts
// nothing. It runs after the result is filled, and a panic in it is logged
// and keeps that result: the records are in the log, and telling the
// client they are not (produceFillGuarded's UNKNOWN_SERVER_ERROR) would
// make a plain producer's retry append them again.
func produceCountIn(b *Broker, a *produceAppend) {
	produceGuard(b, a, "counting the append", func() {
		b.topicMetrics(a.topic).In(a.result.LastOffset-a.result.BaseOffset+1, int64(len(a.records)))
	})
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
// the pending produce's Wait. Its wait for the transaction coordinator's
// verification counts in waits.
func produceStart(ctx context.Context, b *Broker, a *produceAppend, waits *waitClock) (pending *partition.PendingProduce, end func(), err error) {
	if a.records == nil {
		return nil, nil, fmt.Errorf("null records: %w", record.ErrCorrupt)
	}
	p := a.p
	guard, producerID, err := verifyTxnProduce(ctx, b, a, p, waits)
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
// A batch not verified because its producer's transaction is open here
// gets partition.TxnOpenGuard, so that such a marker refuses it too.
// The call to the coordinator is a wait in waits, which the
// request_percentage quota does not charge: Kafka's produce hands the
// check over and appends from its callback, on no request thread.
func verifyTxnProduce(ctx context.Context, b *Broker, a *produceAppend, p *partition.Partition, waits *waitClock) (guard uint64, producerID int64, err error) {
	if a.transactionalID == nil || b.TxnVerifier == nil {
		return 0, -1, nil
	}
	h, err := record.ParseHeader(a.records)
	if err != nil || !h.IsTransactional() {
		return 0, -1, nil // a malformed batch is refused by the append
	}
	if !p.NeedsTxnVerification(h.ProducerID, h.ProducerEpoch) {
		// Verified with the transaction's first batch here; it must
		// still be open when this one is appended, or a marker that
		// came in between would let it open a transaction nobody ends
		// (EndTxnVerification ignores this guard).
		return partition.TxnOpenGuard, h.ProducerID, nil
	}
	guard = p.BeginTxnVerification(h.ProducerID)
	err = func() error {
		// A coordinator that panics (produceRun.guard fails the append)
		// must not leave the producer's verification begun.
		defer func() {
			if r := recover(); r != nil {
				p.EndTxnVerification(h.ProducerID, guard)
				panic(r)
			}
		}()
		waits.begin()
		defer waits.end()
		return b.TxnVerifier.VerifyTxnPartition(ctx, *a.transactionalID, h.ProducerID, h.ProducerEpoch, a.topic, a.partition)
	}()
	if err == nil {
		return guard, h.ProducerID, nil
	}
	p.EndTxnVerification(h.ProducerID, guard)
	if errors.Is(err, partition.ErrTxnVerificationUnsupported) {
		return 0, -1, nil
	}
	return 0, -1, fmt.Errorf("transactional id %q, producer %d epoch %d: %w", *a.transactionalID, h.ProducerID, h.ProducerEpoch, err)
}
