// Package txn is Kafka's transaction coordinator protocol as a pure state
// machine: the transactional ids of one shard (one partition of
// __transaction_state), each with its producer id and epoch, its state
// (Empty, Ongoing, PrepareCommit, ...) and the partitions its open
// transaction wrote to. It does no I/O and reads no clock: every input
// carries nowMs, and the runtime (internal/coord) owns the goroutine, the
// timers, the log, the producer-id allocation and the markers sent to
// partition leaders.
//
// A step (InitProducerID, AddPartitions, EndTxn, MarkersWritten,
// AbortTimedOut, ExpireTransactionalIDs) checks the request against the
// transaction as Kafka's TransactionCoordinator does and queues the record
// of the transition plus the caller's reply. The transition is pending
// (other requests for the id get ErrConcurrentTransactions) until the
// runtime has appended the records (TakeRecords) and calls Durable, which
// applies it, returns the replies and queues the markers of transactions
// that entered PrepareCommit or PrepareAbort (TakeMarkers). Once the
// runtime has written every marker it calls MarkersWritten, which moves
// the transaction to CompleteCommit or CompleteAbort.
//
// Invariants: a transaction's state changes only when its record is
// durable; a reply reporting a transition is released only by Durable;
// every transition is one Kafka allows (validPrevious).
package txn

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Waiter identifies a caller waiting for a reply; 0 means nobody waits.
type Waiter uint64

// Reply is the answer for one Waiter: Value is InitResult for
// InitProducerID, nil otherwise.
type Reply struct {
	Waiter Waiter
	Value  any
	Err    error
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func compareTopicPartitions(a, b TopicPartition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

// Metadata is one transactional id's state: Kafka's TransactionMetadata.
type Metadata struct {
	TransactionalID string
	ProducerID      int64
	// LastProducerID is the producer id before the last rotation (epoch
	// exhausted), so a retried InitProducerId from the old id is answered,
	// not fenced (KIP-360). Memory only, as in Kafka's value version 0.
	LastProducerID int64
	ProducerEpoch  int16
	// LastProducerEpoch is the epoch before the last bump a client asked
	// for with its own epoch, so its retry gets the same answer (KIP-360).
	LastProducerEpoch int16
	TimeoutMs         int32
	State             State
	// Partitions are the partitions of the open transaction, sorted.
	Partitions            []TopicPartition
	StartTimestampMs      int64 // -1: no transaction started
	LastUpdateTimestampMs int64

	pending bool // a transition's record is being written
}

// Config bounds and times the transactions of a shard.
type Config struct {
	MaxTimeoutMs    int32 // transaction.max.timeout.ms
	ExpirationMs    int64 // transactional.id.expiration.ms
	MaxTransactions int   // transactional ids in this shard; 0 is no bound
	// MaxRecordBytes bounds a record (the partitions of one transaction),
	// under the topic's max.message.bytes.
	MaxRecordBytes int
}

// Markers is the work of ending one transaction on its partitions: a
// commit or abort marker, written with the producer id and epoch, to
// every partition.
type Markers struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
	Commit          bool
	Partitions      []TopicPartition
}

// Shard is the transactions of one __transaction_state partition. Not safe
// for concurrent use: one owner goroutine drives it.
type Shard struct {
	cfg  Config
	txns map[string]*Metadata

	records   []Record
	replies   []Reply
	onDurable []func()
	markers   []Markers
}

// NewShard returns an empty shard.
func NewShard(cfg Config) *Shard {
	return &Shard{cfg: cfg, txns: map[string]*Metadata{}}
}

// NumTransactions is how many transactional ids the shard holds.
func (s *Shard) NumTransactions() int { return len(s.txns) }

// TakeRecords returns the records decided since the last call, to append
// to the shard's partition in order.
func (s *Shard) TakeRecords() []Record {
	r := s.records
	s.records = nil
	return r
}

// Durable is called once the records from TakeRecords are durable (or when
// there were none): it applies the pending transitions and returns the
// replies queued since the last call.
func (s *Shard) Durable() []Reply {
	for _, f := range s.onDurable {
		f()
	}
	s.onDurable = nil
	r := s.replies
	s.replies = nil
	return r
}

// TakeMarkers returns the transactions whose markers are to be written,
// queued by Durable and Loaded.
func (s *Shard) TakeMarkers() []Markers {
	m := s.markers
	s.markers = nil
	return m
}

func (s *Shard) reply(w Waiter, v any, err error) {
	if w != 0 {
		s.replies = append(s.replies, Reply{Waiter: w, Value: v, Err: err})
	}
}

// transit queues the record moving m to next and applies it once durable,
// then calls done (which may queue the reply).
func (s *Shard) transit(m *Metadata, next Metadata, done func()) {
	if !canTransition(m.State, next.State) {
		// A bug, not a client error: refuse rather than write a record a
		// Kafka coordinator would refuse to load.
		panic(fmt.Sprintf("txn %q: illegal transition %s -> %s", m.TransactionalID, m.State, next.State))
	}
	m.pending = true
	next.pending = false
	s.records = append(s.records, Record{Key: transactionKey(m.TransactionalID), Value: transactionValue(&next)})
	s.onDurable = append(s.onDurable, func() {
		*m = next
		if next.State == StatePrepareCommit || next.State == StatePrepareAbort {
			s.markers = append(s.markers, markersOf(m))
		}
		done()
	})
}

func markersOf(m *Metadata) Markers {
	return Markers{TransactionalID: m.TransactionalID, ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch,
		Commit: m.State == StatePrepareCommit, Partitions: slices.Clone(m.Partitions)}
}

// epochExhausted is Kafka's isEpochExhausted: one epoch is kept in reserve
// so a timed-out transaction can still be fenced by a bump.
func epochExhausted(epoch int16) bool { return epoch >= math.MaxInt16-1 }

// InitRequest is an InitProducerId with a transactional id. ProducerID and
// ProducerEpoch are -1 unless the client sends its current ones (v3+,
// KIP-360). NewProducerID is -1 or an id the runtime allocated after the
// step answered ErrProducerIDNeeded.
type InitRequest struct {
	TransactionalID string
	TimeoutMs       int32
	ProducerID      int64
	ProducerEpoch   int16
	NewProducerID   int64
}

// InitResult is the producer id and epoch the producer is to use.
type InitResult struct {
	ProducerID    int64
	ProducerEpoch int16
}

// InitProducerID gives the transactional id its producer id and a bumped
// epoch (fencing earlier producers of the id), as Kafka's
// handleInitProducerId. A transaction still open is aborted first: the
// epoch is bumped, PrepareAbort written, and the caller told
// ErrConcurrentTransactions, so it retries once the abort completed.
func (s *Shard) InitProducerID(nowMs int64, w Waiter, req InitRequest) {
	if req.TransactionalID == "" || len(req.TransactionalID) > maxRecordString {
		s.reply(w, nil, ErrInvalidRequest)
		return
	}
	if req.TimeoutMs <= 0 || req.TimeoutMs > s.cfg.MaxTimeoutMs {
		s.reply(w, nil, fmt.Errorf("%w: %d ms, transaction.max.timeout.ms is %d", ErrInvalidTransactionTimeout, req.TimeoutMs, s.cfg.MaxTimeoutMs))
		return
	}
	m := s.txns[req.TransactionalID]
	if m == nil {
		if req.NewProducerID < 0 {
			s.reply(w, nil, ErrProducerIDNeeded)
			return
		}
		if s.cfg.MaxTransactions > 0 && len(s.txns) >= s.cfg.MaxTransactions {
			s.reply(w, nil, ErrTooManyTransactions)
			return
		}
		m = &Metadata{TransactionalID: req.TransactionalID, ProducerID: req.NewProducerID, LastProducerID: -1,
			ProducerEpoch: -1, LastProducerEpoch: -1, TimeoutMs: req.TimeoutMs, State: StateEmpty,
			StartTimestampMs: -1, LastUpdateTimestampMs: nowMs}
		s.txns[req.TransactionalID] = m
		req.NewProducerID = -1 // used up: an id's first epoch is a bump
	}
	expected := req.ProducerID >= 0
	switch {
	case m.pending:
		s.reply(w, nil, ErrConcurrentTransactions)
		return
	case expected && !validProducerID(m, req):
		s.reply(w, nil, fmt.Errorf("%w: producer id %d is not %d's", ErrProducerFenced, req.ProducerID, m.ProducerID))
		return
	}
	switch m.State {
	case StateEmpty, StateCompleteCommit, StateCompleteAbort:
		s.initCompleted(nowMs, w, m, req)
	case StateOngoing:
		// Kafka never returns this bumped epoch: the client retries and
		// the next call bumps again (or rotates the id if this bump
		// exhausted the epochs).
		s.fenceAndAbort(nowMs, m, func() { s.reply(w, nil, ErrConcurrentTransactions) })
	default:
		s.reply(w, nil, ErrConcurrentTransactions)
	}
}

// validProducerID is Kafka's isValidProducerId: a client naming its
// producer is fenced unless the id is the current one, the metadata is
// new, or it is the id before a rotation with its exhausted epoch (a retry
// whose answer was lost).
func validProducerID(m *Metadata, req InitRequest) bool {
	return m.ProducerEpoch == -1 || req.ProducerID == m.ProducerID ||
		(req.ProducerID == m.LastProducerID && epochExhausted(req.ProducerEpoch))
}

// initCompleted bumps the epoch of an id with no open transaction, or
// gives it a new producer id when the epochs are used up.
func (s *Shard) initCompleted(nowMs int64, w Waiter, m *Metadata, req InitRequest) {
	expected := req.ProducerID >= 0
	next := *m
	next.State, next.Partitions, next.TimeoutMs = StateEmpty, nil, req.TimeoutMs
	next.StartTimestampMs, next.LastUpdateTimestampMs = -1, nowMs
	switch {
	case epochExhausted(m.ProducerEpoch) && (!expected || req.ProducerEpoch == m.ProducerEpoch):
		if req.NewProducerID < 0 {
			s.reply(w, nil, ErrProducerIDNeeded)
			return
		}
		next.LastProducerID, next.ProducerID, next.ProducerEpoch = m.ProducerID, req.NewProducerID, 0
		next.LastProducerEpoch = -1
		if expected {
			next.LastProducerEpoch = m.ProducerEpoch
		}
	case !expected:
		next.ProducerEpoch, next.LastProducerEpoch = m.ProducerEpoch+1, -1
	case m.ProducerEpoch == -1 || req.ProducerEpoch == m.ProducerEpoch:
		next.ProducerEpoch, next.LastProducerEpoch = m.ProducerEpoch+1, m.ProducerEpoch
	case req.ProducerEpoch == m.LastProducerEpoch:
		// A retry of the bump that made the current epoch: same answer.
	default:
		s.reply(w, nil, fmt.Errorf("%w: epoch %d, current %d", ErrProducerFenced, req.ProducerEpoch, m.ProducerEpoch))
		return
	}
	s.transit(m, next, func() { s.reply(w, InitResult{ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch}, nil) })
}

// fenceAndAbort aborts m's open transaction under a bumped epoch, so the
// producer that opened it (a zombie, or one that went silent) is fenced
// at every partition by the abort markers. Kafka passes through
// PrepareEpochFence in memory only; the record written is PrepareAbort
// with the new epoch.
func (s *Shard) fenceAndAbort(nowMs int64, m *Metadata, done func()) {
	next := *m
	if next.ProducerEpoch < math.MaxInt16 {
		next.ProducerEpoch++
	}
	next.LastProducerEpoch = -1
	next.State, next.LastUpdateTimestampMs = StatePrepareAbort, nowMs
	s.transit(m, next, done)
}

// ProducerRequest names a transaction as AddPartitionsToTxn, AddOffsetsToTxn
// and EndTxn do.
type ProducerRequest struct {
	TransactionalID string
	ProducerID      int64
	ProducerEpoch   int16
}

// check is the validation every producer request starts with.
func (s *Shard) check(req ProducerRequest) (*Metadata, error) {
	if req.TransactionalID == "" {
		return nil, ErrInvalidRequest
	}
	m := s.txns[req.TransactionalID]
	switch {
	case m == nil:
		return nil, fmt.Errorf("%w: transactional id %q is unknown", ErrInvalidProducerIDMapping, req.TransactionalID)
	case m.ProducerID != req.ProducerID:
		return nil, fmt.Errorf("%w: %q has producer id %d, not %d", ErrInvalidProducerIDMapping, req.TransactionalID, m.ProducerID, req.ProducerID)
	case m.ProducerEpoch != req.ProducerEpoch:
		return nil, fmt.Errorf("%w: epoch %d, current %d", ErrProducerFenced, req.ProducerEpoch, m.ProducerEpoch)
	case m.pending:
		return nil, ErrConcurrentTransactions
	}
	return m, nil
}

// AddPartitions adds partitions to the producer's transaction, starting
// it if none is open (Kafka's handleAddPartitionsToTransaction). The
// reply's error applies to every partition.
func (s *Shard) AddPartitions(nowMs int64, w Waiter, req ProducerRequest, partitions []TopicPartition) {
	m, err := s.check(req)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	switch m.State {
	case StateOngoing, StateEmpty, StateCompleteCommit, StateCompleteAbort:
	default:
		s.reply(w, nil, ErrConcurrentTransactions)
		return
	}
	merged := slices.Clone(m.Partitions)
	for _, tp := range partitions {
		if _, found := slices.BinarySearchFunc(m.Partitions, tp, compareTopicPartitions); !found {
			merged = append(merged, tp)
		}
	}
	slices.SortFunc(merged, compareTopicPartitions)
	merged = slices.Compact(merged)
	if m.State == StateOngoing && len(merged) == len(m.Partitions) {
		s.reply(w, nil, nil) // nothing new: no record, as Kafka
		return
	}
	next := *m
	next.Partitions, next.State, next.LastUpdateTimestampMs = merged, StateOngoing, nowMs
	if m.State != StateOngoing {
		next.StartTimestampMs = nowMs
	}
	if s.cfg.MaxRecordBytes > 0 && len(transactionValue(&next)) > s.cfg.MaxRecordBytes {
		s.reply(w, nil, fmt.Errorf("%w: %d partitions", ErrTooManyPartitions, len(merged)))
		return
	}
	s.transit(m, next, func() { s.reply(w, nil, nil) })
}

// VerifyPartitions answers a partition leader's check (AddPartitionsToTxn
// v4+ verify_only, KIP-890 part 1) that a transactional produce belongs to
// the producer's ongoing transaction: a nil error per partition that is in
// it, ErrInvalidTxnState for one that is not. It changes nothing.
func (s *Shard) VerifyPartitions(req ProducerRequest, partitions []TopicPartition) ([]error, error) {
	m, err := s.check(req)
	if err != nil {
		return nil, err
	}
	if m.State == StatePrepareCommit || m.State == StatePrepareAbort {
		return nil, ErrConcurrentTransactions
	}
	out := make([]error, len(partitions))
	for i, tp := range partitions {
		_, found := slices.BinarySearchFunc(m.Partitions, tp, compareTopicPartitions)
		if m.State != StateOngoing || !found {
			out[i] = fmt.Errorf("%w: %s-%d is not in the transaction", ErrInvalidTxnState, tp.Topic, tp.Partition)
		}
	}
	return out, nil
}

// EndTxn commits or aborts the producer's transaction (Kafka's
// handleEndTransaction for transaction version 1): PrepareCommit or
// PrepareAbort is written and the caller answered once it is durable; the
// markers follow (TakeMarkers), and a retry of the same outcome succeeds.
func (s *Shard) EndTxn(nowMs int64, w Waiter, req ProducerRequest, commit bool) {
	m, err := s.check(req)
	if err != nil {
		s.reply(w, nil, err)
		return
	}
	wrong := fmt.Errorf("%w: cannot %s a transaction in state %s", ErrInvalidTxnState, map[bool]string{true: "commit", false: "abort"}[commit], m.State)
	switch m.State {
	case StateOngoing:
		next := *m
		next.State, next.LastUpdateTimestampMs = StatePrepareAbort, nowMs
		if commit {
			next.State = StatePrepareCommit
		}
		s.transit(m, next, func() { s.reply(w, nil, nil) })
	case StateCompleteCommit, StateCompleteAbort:
		if commit == (m.State == StateCompleteCommit) {
			s.reply(w, nil, nil)
		} else {
			s.reply(w, nil, wrong)
		}
	case StatePrepareCommit, StatePrepareAbort:
		if commit == (m.State == StatePrepareCommit) {
			s.reply(w, nil, ErrConcurrentTransactions)
		} else {
			s.reply(w, nil, wrong)
		}
	case StateEmpty:
		s.reply(w, nil, wrong)
	default:
		s.reply(w, nil, ErrConcurrentTransactions)
	}
}

// MarkersWritten completes a transaction whose markers every partition
// has: CompleteCommit or CompleteAbort is written. A stale call (the
// transaction moved on, the shard was reloaded) is ignored.
func (s *Shard) MarkersWritten(nowMs int64, done Markers) {
	m := s.txns[done.TransactionalID]
	if m == nil || m.pending || m.ProducerID != done.ProducerID || m.ProducerEpoch != done.ProducerEpoch {
		return
	}
	next := *m
	switch {
	case m.State == StatePrepareCommit && done.Commit:
		next.State = StateCompleteCommit
	case m.State == StatePrepareAbort && !done.Commit:
		next.State = StateCompleteAbort
	default:
		return
	}
	next.Partitions, next.LastUpdateTimestampMs = nil, nowMs
	s.transit(m, next, func() {})
}

// AbortTimedOut aborts, under a bumped epoch, every transaction open
// longer than its timeout (Kafka's abortTimedOutTransactions), so a
// producer that hung cannot commit it later.
func (s *Shard) AbortTimedOut(nowMs int64) {
	for _, m := range s.sorted() {
		if m.State == StateOngoing && !m.pending && m.StartTimestampMs+int64(m.TimeoutMs) <= nowMs {
			s.fenceAndAbort(nowMs, m, func() {})
		}
	}
}

// ExpireTransactionalIDs forgets ids idle longer than
// transactional.id.expiration.ms with no transaction open, writing their
// tombstones.
func (s *Shard) ExpireTransactionalIDs(nowMs int64) {
	for _, m := range s.sorted() {
		if !m.State.completed() || m.pending || m.LastUpdateTimestampMs+s.cfg.ExpirationMs > nowMs {
			continue
		}
		if !canTransition(m.State, StateDead) {
			continue
		}
		m.pending = true
		s.records = append(s.records, Record{Key: transactionKey(m.TransactionalID)})
		s.onDurable = append(s.onDurable, func() { delete(s.txns, m.TransactionalID) })
	}
}

// sorted is the shard's transactions by id, so that a run is reproducible
// (records come out in one order).
func (s *Shard) sorted() []*Metadata {
	out := make([]*Metadata, 0, len(s.txns))
	for _, m := range s.txns {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b *Metadata) int { return strings.Compare(a.TransactionalID, b.TransactionalID) })
	return out
}

// Load replays one record of the shard's partition.
func (s *Shard) Load(key, value []byte) error {
	id, err := decodeKey(key)
	if err != nil {
		return err
	}
	if value == nil {
		delete(s.txns, id)
		return nil
	}
	m, err := decodeValue(value)
	if err != nil {
		return fmt.Errorf("transactional id %q: %w", id, err)
	}
	m.TransactionalID = id
	s.txns[id] = m
	return nil
}

// Loaded is called once the whole partition is replayed: the markers of
// transactions a previous coordinator prepared but did not complete are
// queued (TakeMarkers), so they are sent again.
func (s *Shard) Loaded() {
	for _, m := range s.sorted() {
		if m.State == StatePrepareCommit || m.State == StatePrepareAbort {
			s.markers = append(s.markers, markersOf(m))
		}
	}
}

// Describe returns a copy of the id's metadata.
func (s *Shard) Describe(id string) (Metadata, bool) {
	m := s.txns[id]
	if m == nil {
		return Metadata{}, false
	}
	out := *m
	out.Partitions = slices.Clone(m.Partitions)
	return out, true
}

// ListFilter selects transactions for ListTransactions; empty filters
// select everything.
type ListFilter struct {
	States      []State
	ProducerIDs []int64
	// MinDurationMs selects transactions open at least this long (v1,
	// KIP-994); negative selects all.
	MinDurationMs int64
}

// Listing is one transactional id in ListTransactions.
type Listing struct {
	TransactionalID string
	ProducerID      int64
	State           State
}

// List lists the shard's transactions that pass the filter, by id.
func (s *Shard) List(nowMs int64, f ListFilter) []Listing {
	var out []Listing
	for _, m := range s.sorted() {
		switch {
		case len(f.States) > 0 && !slices.Contains(f.States, m.State):
		case len(f.ProducerIDs) > 0 && !slices.Contains(f.ProducerIDs, m.ProducerID):
		case f.MinDurationMs >= 0 && (m.StartTimestampMs < 0 || m.State.completed() || nowMs-m.StartTimestampMs < f.MinDurationMs):
		default:
			out = append(out, Listing{TransactionalID: m.TransactionalID, ProducerID: m.ProducerID, State: m.State})
		}
	}
	return out
}
