package sharegroup

// StateBatch is a run of in-flight records with one state and delivery
// count, as Kafka's share coordinator stores them (WriteShareGroupState's
// StateBatches).
type StateBatch struct {
	FirstOffset, LastOffset int64
	State                   RecordState
	DeliveryCount           int16

	memberID     string
	lockExpiryMs int64
}

// PartitionState is what survives a restart of the share partition: the
// SPSO and the in-flight records. An acquired record is kept as Available
// with its delivery count, as Kafka does: its lock died with the leader, and
// the delivery it was on still counts.
type PartitionState struct {
	StateEpoch  int32
	StartOffset int64
	Batches     []StateBatch
}

// State is the partition's durable state.
func (p *Partition) State() PartitionState {
	return PartitionState{StateEpoch: p.stateEpoch, StartOffset: p.startOffset, Batches: p.runs(false)}
}

// LoadPartition rebuilds a share partition from its durable state, one
// state epoch later. Offsets between batches (there are none in a state
// this package wrote) are taken as Available, never delivered.
func LoadPartition(cfg PartitionConfig, st PartitionState) *Partition {
	p := &Partition{cfg: cfg, startOffset: st.StartOffset, stateEpoch: st.StateEpoch + 1}
	for _, b := range st.Batches {
		if b.LastOffset < p.EndOffset() || b.LastOffset < b.FirstOffset {
			continue
		}
		for p.EndOffset() < b.FirstOffset {
			p.records = append(p.records, inFlight{})
		}
		state := b.State
		if state == Acquired {
			state = Available
		}
		for o := max(b.FirstOffset, p.EndOffset()); o <= b.LastOffset; o++ {
			p.records = append(p.records, inFlight{state: state, deliveryCount: b.DeliveryCount})
		}
	}
	p.advance()
	return p
}

// runs coalesces in-flight records into batches; withLocks also splits by
// holder and lock, for display.
func (p *Partition) runs(withLocks bool) []StateBatch {
	var out []StateBatch
	for i, r := range p.records {
		offset := p.startOffset + int64(i)
		state, member, lock := r.state, "", int64(0)
		if withLocks {
			member, lock = r.memberID, r.lockExpiryMs
		} else if state == Acquired {
			state = Available
		}
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.State == state && last.DeliveryCount == r.deliveryCount && last.memberID == member && last.lockExpiryMs == lock {
				last.LastOffset = offset
				continue
			}
		}
		out = append(out, StateBatch{FirstOffset: offset, LastOffset: offset, State: state, DeliveryCount: r.deliveryCount, memberID: member, lockExpiryMs: lock})
	}
	return out
}
