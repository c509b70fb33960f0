// Package sharestate is the share coordinator's state machine (KIP-932),
// Kafka's ShareCoordinatorShard without the I/O: the durable state of
// each share partition (its group, topic id and partition), kept in one
// partition of __share_group_state.
//
// A step decides records, applies them with the same code that replays
// them at load, and queues its reply; the driver (internal/coord) appends
// the records with acks=all and only then releases the replies
// (TakeRecords, then Durable). So a write is acknowledged to the share
// partition leader only once the state survives the loss of this broker.
//
// Records: the initialisation of a share partition is a ShareSnapshot,
// and so is every Config.UpdatesPerSnapshot-th write after it (snapshot
// epoch + 1); the writes between are ShareUpdates naming that snapshot
// epoch. (Logs of earlier Sluice builds, whose first write made the
// snapshot, replay the same.) Kafka's updates carry only the batches a write changed, which
// compaction (it keeps one record per key, so only the newest update)
// could lose; Sluice's updates carry the whole state merged since the
// snapshot. Merging that over the snapshot, as Kafka's replay does, gives
// the same state, so the topic stays readable by Kafka, and the newest
// snapshot plus the newest update of a key are all that replay needs.
//
// Fencing, as in Kafka: a write or read with a leader epoch below the
// stored one is FENCED_LEADER_EPOCH (a deposed share-partition leader); a
// write with a state epoch below the stored one is FENCED_STATE_EPOCH (the
// state was re-initialised since). A read with a newer leader epoch
// records it, so the old leader's next write is fenced.
//
// Stricter than Kafka: a write with a leader epoch above the stored one
// is FENCED_STATE_EPOCH too. A leader reads before it writes, in the same
// leader epoch, so a legitimate write never carries a newer one; one that
// does comes from a copy read before the state was deleted and
// initialised again (a share group deleted and re-created under the same
// id), which a new state's epochs (leader -1, state 0) could not fence.
//
// Only InitializeShareGroupState creates a share partition's state. A read
// or write of a share partition with none (never initialised, or deleted
// by DeleteShareGroupState) is refused with INVALID_REQUEST, as Kafka 4.1's
// share coordinator refuses it: a leader that still caches a deleted
// group's share partition cannot write it back, whatever its epochs, for
// a deletion leaves no epoch behind to fence it with.
package sharestate

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Errors of the steps, each mapped to a Kafka code at the edge.
var (
	ErrFencedLeaderEpoch = errors.New("share partition leader epoch is stale")   // FENCED_LEADER_EPOCH
	ErrFencedStateEpoch  = errors.New("share partition state epoch is stale")    // FENCED_STATE_EPOCH
	ErrInvalidRequest    = errors.New("invalid share state request")             // INVALID_REQUEST
	ErrTooManyStates     = errors.New("too many share partitions in this shard") // POLICY_VIOLATION, as for too many groups
	// ErrUninitialized: a read or write of a share partition without
	// state (INVALID_REQUEST, Kafka's answer; its own error so that the
	// share partition leader can tell it from a malformed request).
	ErrUninitialized = errors.New("share partition state is not initialized")
)

// Key names one share partition's state.
type Key struct {
	GroupID   string
	TopicID   [16]byte
	Partition int32
}

// Batch is a run of offsets in one delivery state (0 available, 2
// acknowledged, 4 archived) with one delivery count.
type Batch struct {
	FirstOffset, LastOffset int64
	DeliveryState           int8
	DeliveryCount           int16
}

// State is one share partition's durable state.
type State struct {
	SnapshotEpoch     int32
	StateEpoch        int32
	LeaderEpoch       int32
	StartOffset       int64
	CreateTimestampMs int64
	WriteTimestampMs  int64
	Batches           []Batch
	// updates counts the ShareUpdates applied since the snapshot.
	updates int
}

// Config bounds a shard.
type Config struct {
	// UpdatesPerSnapshot: share.coordinator.snapshot.update.records.per.snapshot
	// (Kafka's default 500).
	UpdatesPerSnapshot int
	// MaxBatches bounds the batches of one state (a write that would
	// exceed it is refused).
	MaxBatches int
	// MaxStates bounds the share partitions one shard holds.
	MaxStates int
}

// Waiter identifies a step's caller; 0 means nobody waits.
type Waiter uint64

// Reply is a step's answer, released once its records are durable.
type Reply struct {
	Waiter Waiter
	Value  any
	Err    error
}

// Shard is the state of one __share_group_state partition.
type Shard struct {
	cfg     Config
	states  map[Key]*State
	records []Record
	pending []Reply
}

// NewShard is an empty shard.
func NewShard(cfg Config) *Shard {
	return &Shard{cfg: cfg, states: map[Key]*State{}}
}

// NumStates is the number of share partitions held.
func (s *Shard) NumStates() int { return len(s.states) }

// TakeRecords returns the records decided since the last call.
func (s *Shard) TakeRecords() []Record {
	r := s.records
	s.records = nil
	return r
}

// Durable returns the replies whose records TakeRecords handed out (the
// driver calls it once they are appended).
func (s *Shard) Durable() []Reply {
	r := s.pending
	s.pending = nil
	return r
}

func (s *Shard) reply(w Waiter, v any, err error) {
	s.pending = append(s.pending, Reply{Waiter: w, Value: v, Err: err})
}

// ReadResult answers ReadShareGroupState: StartOffset -1 when the share
// partition was initialised without one (the group coordinator leaves it
// to the leader's share.auto.offset.reset).
type ReadResult struct {
	StateEpoch  int32
	StartOffset int64
	Batches     []Batch
}

// Summary answers ReadShareGroupStateSummary.
type Summary struct {
	StateEpoch  int32
	LeaderEpoch int32
	StartOffset int64
}

// Read returns a share partition's state for its leader in leaderEpoch. A
// newer leader epoch is recorded first (a ShareUpdate changing nothing
// else), so the previous leader can no longer write. A share partition
// without state is ErrUninitialized, and nothing is recorded.
func (s *Shard) Read(w Waiter, key Key, leaderEpoch int32) {
	st := s.states[key]
	switch {
	case st == nil:
		s.reply(w, nil, fmt.Errorf("read of %s/%d: %w", key.GroupID, key.Partition, ErrUninitialized))
		return
	case leaderEpoch < st.LeaderEpoch && leaderEpoch >= 0:
		s.reply(w, nil, fmt.Errorf("read in leader epoch %d, stored %d: %w", leaderEpoch, st.LeaderEpoch, ErrFencedLeaderEpoch))
		return
	case leaderEpoch > st.LeaderEpoch:
		s.emitUpdate(key, st, update{SnapshotEpoch: st.SnapshotEpoch, LeaderEpoch: leaderEpoch, StartOffset: st.StartOffset, Batches: st.Batches})
	}
	s.reply(w, ReadResult{StateEpoch: st.StateEpoch, StartOffset: st.StartOffset, Batches: slices.Clone(st.Batches)}, nil)
}

// ReadSummary returns the epochs and start offset of a share partition;
// ok is false when it has no state.
func (s *Shard) ReadSummary(key Key) (Summary, bool) {
	st := s.states[key]
	if st == nil {
		return Summary{StartOffset: -1}, false
	}
	return Summary{StateEpoch: st.StateEpoch, LeaderEpoch: st.LeaderEpoch, StartOffset: st.StartOffset}, true
}

// WriteRequest is one partition of WriteShareGroupState. StartOffset -1
// keeps the stored one; LeaderEpoch and StateEpoch -1 keep theirs.
type WriteRequest struct {
	StateEpoch  int32
	LeaderEpoch int32
	StartOffset int64
	Batches     []Batch
}

// Write merges a share partition leader's state into the stored one; a
// share partition without state is ErrUninitialized (Initialize makes it).
func (s *Shard) Write(nowMs int64, w Waiter, key Key, req WriteRequest) {
	if err := s.checkWrite(key, req); err != nil {
		s.reply(w, nil, err)
		return
	}
	st := s.states[key]
	next := *st
	if req.LeaderEpoch >= 0 {
		next.LeaderEpoch = req.LeaderEpoch
	}
	if req.StateEpoch >= 0 {
		next.StateEpoch = req.StateEpoch
	}
	if req.StartOffset >= 0 {
		next.StartOffset = req.StartOffset
	}
	next.Batches = merge(st.Batches, req.Batches, next.StartOffset)
	if len(next.Batches) > s.cfg.MaxBatches {
		s.reply(w, nil, fmt.Errorf("%d state batches, at most %d: %w", len(next.Batches), s.cfg.MaxBatches, ErrInvalidRequest))
		return
	}
	if st.updates >= s.cfg.UpdatesPerSnapshot || next.StateEpoch != st.StateEpoch {
		s.emitSnapshot(key, snapshot{SnapshotEpoch: st.SnapshotEpoch + 1, StateEpoch: next.StateEpoch, LeaderEpoch: next.LeaderEpoch,
			StartOffset: next.StartOffset, CreateTimestampMs: st.CreateTimestampMs, WriteTimestampMs: nowMs, Batches: next.Batches})
	} else {
		s.emitUpdate(key, st, update{SnapshotEpoch: st.SnapshotEpoch, LeaderEpoch: next.LeaderEpoch, StartOffset: next.StartOffset, Batches: next.Batches})
	}
	s.reply(w, nil, nil)
}

func (s *Shard) checkWrite(key Key, req WriteRequest) error {
	if key.Partition < 0 {
		return fmt.Errorf("partition %d: %w", key.Partition, ErrInvalidRequest)
	}
	if len(req.Batches) > s.cfg.MaxBatches {
		return fmt.Errorf("%d state batches, at most %d: %w", len(req.Batches), s.cfg.MaxBatches, ErrInvalidRequest)
	}
	for _, b := range req.Batches {
		if b.FirstOffset > b.LastOffset || b.FirstOffset < 0 {
			return fmt.Errorf("state batch %d-%d: %w", b.FirstOffset, b.LastOffset, ErrInvalidRequest)
		}
	}
	st := s.states[key]
	if st == nil {
		return fmt.Errorf("write of %s/%d: %w", key.GroupID, key.Partition, ErrUninitialized)
	}
	if req.LeaderEpoch >= 0 && req.LeaderEpoch < st.LeaderEpoch {
		return fmt.Errorf("write in leader epoch %d, stored %d: %w", req.LeaderEpoch, st.LeaderEpoch, ErrFencedLeaderEpoch)
	}
	if req.StateEpoch >= 0 && req.StateEpoch < st.StateEpoch {
		return fmt.Errorf("write in state epoch %d, stored %d: %w", req.StateEpoch, st.StateEpoch, ErrFencedStateEpoch)
	}
	if req.LeaderEpoch > st.LeaderEpoch {
		// A leader reads the state in its leader epoch before it writes,
		// and the read records that epoch: a writer in a newer one never
		// read this state. Its copy is of a state that was deleted and
		// initialized again since (a new group of the same id, from
		// leader epoch -1), whose epochs cannot fence it.
		return fmt.Errorf("write in leader epoch %d, but the state was last read in %d: %w", req.LeaderEpoch, st.LeaderEpoch, ErrFencedStateEpoch)
	}
	return nil
}

// Initialize starts (or restarts) a share partition's state at
// startOffset in a newer state epoch (InitializeShareGroupState): the
// group coordinator does it when a share group starts consuming a
// partition, or its offsets are reset.
//
// The same initialization again (same state epoch and start offset, and
// nothing written on it since) is done again, as Kafka's share
// coordinator takes an initialization in the stored state epoch: it is a
// caller's retry whose first answer was lost (it timed out while the
// record was replicated), and answering it FENCED_STATE_EPOCH would
// report a failure for what succeeded. Writing it again makes the answer
// wait for the earlier record to be committed too. Any other
// initialization in the stored state epoch or below is fenced: the
// heartbeat's initialization of a partition already in use takes that as
// done.
func (s *Shard) Initialize(nowMs int64, w Waiter, key Key, stateEpoch int32, startOffset int64) {
	st := s.states[key]
	switch {
	case key.Partition < 0 || startOffset < -1:
		s.reply(w, nil, fmt.Errorf("initialize partition %d at %d: %w", key.Partition, startOffset, ErrInvalidRequest))
		return
	case st != nil && stateEpoch <= st.StateEpoch && !repeatsInitialization(st, stateEpoch, startOffset):
		s.reply(w, nil, fmt.Errorf("initialize in state epoch %d, stored %d: %w", stateEpoch, st.StateEpoch, ErrFencedStateEpoch))
		return
	case st == nil && len(s.states) >= s.cfg.MaxStates:
		s.reply(w, nil, fmt.Errorf("%d share partitions: %w", len(s.states), ErrTooManyStates))
		return
	}
	snap := snapshot{StateEpoch: stateEpoch, LeaderEpoch: -1, StartOffset: startOffset, CreateTimestampMs: nowMs, WriteTimestampMs: nowMs}
	if st != nil {
		snap.SnapshotEpoch, snap.LeaderEpoch = st.SnapshotEpoch+1, st.LeaderEpoch
	}
	s.emitSnapshot(key, snap)
	s.reply(w, nil, nil)
}

// repeatsInitialization says whether st is what an initialization in
// stateEpoch at startOffset left, untouched since but for a leader's read.
func repeatsInitialization(st *State, stateEpoch int32, startOffset int64) bool {
	return st.StateEpoch == stateEpoch && st.StartOffset == startOffset && len(st.Batches) == 0
}

// Delete removes a share partition's state (DeleteShareGroupState): a
// tombstone for each of its keys, so compaction drops both records.
func (s *Shard) Delete(w Waiter, key Key) {
	if s.states[key] != nil {
		for _, typ := range []int16{typeSnapshot, typeUpdate} {
			r := Record{Key: encodeKey(typ, key)}
			s.records = append(s.records, r)
			s.apply(r)
		}
	}
	s.reply(w, nil, nil)
}

// DeleteTopics removes the state of every share partition of the given
// topics (by id), as Kafka's share coordinator does when the controller
// deletes a topic: tombstones, so compaction drops the records, and a
// topic re-created under the same name (a new id) starts with none. No
// one waits for it; it returns how many share partitions it removed.
func (s *Shard) DeleteTopics(topicIDs map[[16]byte]bool) int {
	var keys []Key
	for key := range s.states {
		if topicIDs[key.TopicID] {
			keys = append(keys, key)
		}
	}
	// In key order, so the records do not depend on the map's.
	slices.SortFunc(keys, compareKeys)
	for _, key := range keys {
		for _, typ := range []int16{typeSnapshot, typeUpdate} {
			r := Record{Key: encodeKey(typ, key)}
			s.records = append(s.records, r)
			s.apply(r)
		}
	}
	return len(keys)
}

func compareKeys(a, b Key) int {
	if c := strings.Compare(a.GroupID, b.GroupID); c != 0 {
		return c
	}
	if c := bytes.Compare(a.TopicID[:], b.TopicID[:]); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

func (s *Shard) emitSnapshot(key Key, snap snapshot) {
	r := Record{Key: encodeKey(typeSnapshot, key), Value: encodeSnapshot(snap)}
	s.records = append(s.records, r)
	s.states[key] = &State{SnapshotEpoch: snap.SnapshotEpoch, StateEpoch: snap.StateEpoch, LeaderEpoch: snap.LeaderEpoch,
		StartOffset: snap.StartOffset, CreateTimestampMs: snap.CreateTimestampMs, WriteTimestampMs: snap.WriteTimestampMs, Batches: snap.Batches}
}

func (s *Shard) emitUpdate(key Key, st *State, u update) {
	r := Record{Key: encodeKey(typeUpdate, key), Value: encodeUpdate(u)}
	s.records = append(s.records, r)
	s.applyUpdate(st, u)
}

// apply replays one record decided here.
func (s *Shard) apply(r Record) {
	_ = s.Load(r.Key, r.Value) // records decided here always parse
}

// Load replays one record of the partition, in log order. A ShareUpdate
// applies only on top of the snapshot epoch it names: one that precedes a
// newer snapshot, or whose snapshot was deleted, changes nothing.
func (s *Shard) Load(keyBytes, value []byte) error {
	typ, key, err := decodeKey(keyBytes)
	if err != nil {
		return err
	}
	if value == nil {
		if typ == typeSnapshot {
			delete(s.states, key)
		}
		return nil
	}
	if typ == typeSnapshot {
		snap, err := decodeSnapshot(value, s.cfg.MaxBatches)
		if err != nil {
			return err
		}
		s.states[key] = &State{SnapshotEpoch: snap.SnapshotEpoch, StateEpoch: snap.StateEpoch, LeaderEpoch: snap.LeaderEpoch,
			StartOffset: snap.StartOffset, CreateTimestampMs: snap.CreateTimestampMs, WriteTimestampMs: snap.WriteTimestampMs, Batches: snap.Batches}
		return nil
	}
	u, err := decodeUpdate(value, s.cfg.MaxBatches)
	if err != nil {
		return err
	}
	if st := s.states[key]; st != nil && st.SnapshotEpoch == u.SnapshotEpoch {
		s.applyUpdate(st, u)
	}
	return nil
}

func (s *Shard) applyUpdate(st *State, u update) {
	if u.LeaderEpoch >= 0 {
		st.LeaderEpoch = u.LeaderEpoch
	}
	if u.StartOffset >= 0 {
		st.StartOffset = u.StartOffset
	}
	st.Batches = merge(st.Batches, u.Batches, st.StartOffset)
	st.updates++
}

// merge lays batches over base (a later batch wins where they overlap),
// drops what lies below startOffset, and joins neighbouring runs of the
// same state and delivery count, as Kafka's PersisterStateBatchCombiner
// does. base is sorted and disjoint (merge's own output); batches from a
// leader usually are too, and then one sweep does it, else they are laid
// one by one.
func merge(base, batches []Batch, startOffset int64) []Batch {
	var out []Batch
	if sortedDisjoint(batches) {
		out = overlay(base, batches)
	} else {
		out = slices.Clone(base)
		for _, b := range batches {
			out = cut(out, b.FirstOffset, b.LastOffset)
			out = append(out, b)
		}
		slices.SortFunc(out, func(a, b Batch) int { return cmpOffset(a.FirstOffset, b.FirstOffset) })
	}
	if startOffset >= 0 {
		out = cut(out, 0, startOffset-1)
	}
	joined := out[:0]
	for _, b := range out {
		if n := len(joined); n > 0 {
			last := &joined[n-1]
			if last.LastOffset+1 == b.FirstOffset && last.DeliveryState == b.DeliveryState && last.DeliveryCount == b.DeliveryCount {
				last.LastOffset = b.LastOffset
				continue
			}
		}
		joined = append(joined, b)
	}
	return joined
}

func cmpOffset(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func sortedDisjoint(batches []Batch) bool {
	for i := 1; i < len(batches); i++ {
		if batches[i].FirstOffset <= batches[i-1].LastOffset {
			return false
		}
	}
	return true
}

// overlay is merge's sweep: base and top sorted and disjoint, top wins;
// the result is sorted and disjoint.
func overlay(base, top []Batch) []Batch {
	out := make([]Batch, 0, len(base)+len(top))
	t := 0
	for _, b := range base {
		for b.FirstOffset <= b.LastOffset {
			for t < len(top) && top[t].LastOffset < b.FirstOffset {
				out = append(out, top[t])
				t++
			}
			if t == len(top) || top[t].FirstOffset > b.LastOffset {
				out = append(out, b) // no top batch touches the rest of b
				break
			}
			if top[t].FirstOffset > b.FirstOffset {
				left := b
				left.LastOffset = top[t].FirstOffset - 1
				out = append(out, left)
			}
			b.FirstOffset = top[t].LastOffset + 1 // what top[t] covers is dropped
		}
	}
	return append(out, top[t:]...)
}

// cut removes offsets first..last from batches, splitting those that
// straddle the range.
func cut(batches []Batch, first, last int64) []Batch {
	if first > last {
		return batches
	}
	out := make([]Batch, 0, len(batches)+1)
	for _, b := range batches {
		if b.LastOffset < first || b.FirstOffset > last {
			out = append(out, b)
			continue
		}
		if b.FirstOffset < first {
			left := b
			left.LastOffset = first - 1
			out = append(out, left)
		}
		if b.LastOffset > last {
			right := b
			right.FirstOffset = last + 1
			out = append(out, right)
		}
	}
	return out
}

// String prints the shard as the golden stories show it, keys sorted.
func (s *Shard) String() string {
	keys := make([]Key, 0, len(s.states))
	for k := range s.states {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	var b strings.Builder
	for _, k := range keys {
		st := s.states[k]
		fmt.Fprintf(&b, "%s/%x/%d snapshot=%d updates=%d state=%d leader=%d spso=%d\n", k.GroupID, k.TopicID[:2], k.Partition,
			st.SnapshotEpoch, st.updates, st.StateEpoch, st.LeaderEpoch, st.StartOffset)
		for _, x := range st.Batches {
			fmt.Fprintf(&b, "  %d-%d state=%d count=%d\n", x.FirstOffset, x.LastOffset, x.DeliveryState, x.DeliveryCount)
		}
	}
	return b.String()
}
