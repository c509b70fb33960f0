package sharegroup

import (
	"fmt"
	"strings"
)

// RecordState is an in-flight record's state, with Kafka's values (they are
// written in the share-partition state, so they must not change).
type RecordState int8

const (
	Available    RecordState = 0
	Acquired     RecordState = 1
	Acknowledged RecordState = 2
	Archived     RecordState = 4
)

func (s RecordState) String() string {
	switch s {
	case Available:
		return "available"
	case Acquired:
		return "acquired"
	case Acknowledged:
		return "acknowledged"
	case Archived:
		return "archived"
	}
	return fmt.Sprintf("state(%d)", int8(s))
}

// AcknowledgeType is what a consumer says of a record, with the values of
// ShareFetch and ShareAcknowledge's AcknowledgeTypes.
type AcknowledgeType int8

const (
	// AckGap marks an offset that holds no record (a compacted or control
	// offset); it is archived like a rejected one.
	AckGap     AcknowledgeType = 0
	AckAccept  AcknowledgeType = 1
	AckRelease AcknowledgeType = 2
	AckReject  AcknowledgeType = 3
	// AckRenew (KIP-1222, ShareFetch and ShareAcknowledge v2) extends the
	// acquisition lock of records the member still holds, changing
	// neither their state nor their delivery count: a consumer that
	// processes a record for longer than the lock keeps it.
	AckRenew AcknowledgeType = 4
)

// Valid reports whether t is one of the types above.
func (t AcknowledgeType) Valid() bool { return t >= AckGap && t <= AckRenew }

// PartitionConfig is the share-partition's bounds, from the broker config.
type PartitionConfig struct {
	LockDurationMs     int64 // group.share.record.lock.duration.ms
	DeliveryCountLimit int16 // group.share.delivery.count.limit
	MaxRecordLocks     int   // group.share.partition.max.record.locks
}

// inFlight is one record between the share-partition start offset and end
// offset.
type inFlight struct {
	state         RecordState
	deliveryCount int16
	memberID      string // holder of the acquisition lock
	lockExpiryMs  int64
}

// Partition is a share partition (one group's view of one topic
// partition) as its leader keeps it, Kafka's SharePartition without the
// I/O: records below StartOffset (the SPSO) are done with; records from
// EndOffset (the SPEO) on were never acquired; in between, every offset has
// a state and a delivery count. Invariants: records[0] is never
// Acknowledged or Archived (the SPSO moves past them), and at most
// MaxRecordLocks records are in flight.
type Partition struct {
	cfg         PartitionConfig
	startOffset int64
	records     []inFlight // offsets startOffset .. startOffset+len-1
	stateEpoch  int32
	acquired    int
}

// NewPartition is a share partition that starts consuming at startOffset
// (Kafka's share.auto.offset.reset=latest makes it the high watermark at
// initialisation; earliest the log start offset).
func NewPartition(cfg PartitionConfig, startOffset int64) *Partition {
	return &Partition{cfg: cfg, startOffset: startOffset}
}

// SetLockDurationMs changes the lock duration of acquisitions and
// renewals from now on (the group config share.record.lock.duration.ms
// changed); locks already running keep their expiry.
func (p *Partition) SetLockDurationMs(ms int64) { p.cfg.LockDurationMs = ms }

// StartOffset is the SPSO: every record below it is acknowledged or
// archived.
func (p *Partition) StartOffset() int64 { return p.startOffset }

// EndOffset is the SPEO: the first offset never acquired.
func (p *Partition) EndOffset() int64 { return p.startOffset + int64(len(p.records)) }

// AcquiredCount is the number of records under an acquisition lock.
func (p *Partition) AcquiredCount() int { return p.acquired }

// StateEpoch counts the times the state was loaded; a persisted state
// carries it.
func (p *Partition) StateEpoch() int32 { return p.stateEpoch }

// AcquiredRange is a run of records acquired by one fetch, with the
// delivery count they now have (ShareFetch's AcquiredRecords).
type AcquiredRange struct {
	FirstOffset, LastOffset int64
	DeliveryCount           int16
}

// FirstAcquirable is where a fetch must read from: the first Available
// in-flight record, else the SPEO. ok is false when nothing below
// highWatermark can be acquired, or the lock bound is reached.
func (p *Partition) FirstAcquirable(logStartOffset, highWatermark int64) (offset int64, ok bool) {
	p.skipTo(logStartOffset)
	for i := range p.records {
		if p.records[i].state == Available {
			return p.startOffset + int64(i), true
		}
	}
	end := p.EndOffset()
	return end, end < highWatermark && len(p.records) < p.cfg.MaxRecordLocks
}

// Acquire locks up to maxRecords records for memberID: first Available
// in-flight records (a redelivery), then new ones from the SPEO, all below
// readEnd (the end of what the fetch read, never above the high
// watermark). Each acquisition counts one delivery. As in Kafka, the
// in-flight records (SPSO to SPEO, whatever their state) are bounded by
// MaxRecordLocks: a record stuck in delivery holds the SPSO back, and the
// partition stops taking new records rather than grow without limit.
func (p *Partition) Acquire(memberID string, readEnd int64, maxRecords int, nowMs int64) []AcquiredRange {
	var out []AcquiredRange
	budget := min(maxRecords, p.cfg.MaxRecordLocks-p.acquired)
	take := func(offset int64, r *inFlight) {
		r.state, r.memberID, r.lockExpiryMs = Acquired, memberID, nowMs+p.cfg.LockDurationMs
		r.deliveryCount++
		p.acquired++
		budget--
		if n := len(out); n > 0 && out[n-1].LastOffset == offset-1 && out[n-1].DeliveryCount == r.deliveryCount {
			out[n-1].LastOffset = offset
			return
		}
		out = append(out, AcquiredRange{FirstOffset: offset, LastOffset: offset, DeliveryCount: r.deliveryCount})
	}
	for i := 0; i < len(p.records) && budget > 0; i++ {
		offset := p.startOffset + int64(i)
		if offset >= readEnd {
			return out
		}
		if p.records[i].state == Available {
			take(offset, &p.records[i])
		}
	}
	for offset := p.EndOffset(); offset < readEnd && budget > 0 && len(p.records) < p.cfg.MaxRecordLocks; offset++ {
		p.records = append(p.records, inFlight{})
		take(offset, &p.records[len(p.records)-1])
	}
	return out
}

// Acknowledge applies one acknowledgement to offsets first..last, which
// must all be acquired by memberID; nothing changes when one is not, or
// when ack is no type at all. A renewed lock runs lock duration from
// nowMs.
func (p *Partition) Acknowledge(memberID string, first, last int64, ack AcknowledgeType, nowMs int64) error {
	if !ack.Valid() {
		return fmt.Errorf("acknowledge %d-%d: type %d: %w", first, last, ack, ErrInvalidAcknowledgeType)
	}
	if first > last || first < p.startOffset || last >= p.EndOffset() {
		return fmt.Errorf("acknowledge %d-%d outside in-flight records %d-%d: %w", first, last, p.startOffset, p.EndOffset()-1, ErrInvalidRecordState)
	}
	for o := first; o <= last; o++ {
		r := &p.records[o-p.startOffset]
		if r.state != Acquired || r.memberID != memberID {
			return fmt.Errorf("acknowledge offset %d (%s): %w", o, r.state, ErrInvalidRecordState)
		}
	}
	for o := first; o <= last; o++ {
		r := &p.records[o-p.startOffset]
		switch ack {
		case AckAccept:
			p.settle(r, Acknowledged)
		case AckRelease:
			p.release(r)
		case AckRenew:
			r.lockExpiryMs = nowMs + p.cfg.LockDurationMs
		default: // AckReject, AckGap
			p.settle(r, Archived)
		}
	}
	p.advance()
	return nil
}

// ExpireLocks makes records whose acquisition lock has run out available
// again (or archived, at the delivery count limit). It returns how many
// locks expired.
func (p *Partition) ExpireLocks(nowMs int64) int {
	n := 0
	for i := range p.records {
		r := &p.records[i]
		if r.state == Acquired && r.lockExpiryMs <= nowMs {
			p.release(r)
			n++
		}
	}
	p.advance()
	return n
}

// ReleaseMember releases every record memberID holds: the member left or
// its session expired, so another member gets them now rather than at lock
// expiry.
func (p *Partition) ReleaseMember(memberID string) int {
	n := 0
	for i := range p.records {
		r := &p.records[i]
		if r.state == Acquired && r.memberID == memberID {
			p.release(r)
			n++
		}
	}
	p.advance()
	return n
}

// NextLockExpiryMs is the earliest lock expiry, or -1 without locks.
func (p *Partition) NextLockExpiryMs() int64 {
	next := int64(-1)
	for i := range p.records {
		if r := &p.records[i]; r.state == Acquired && (next < 0 || r.lockExpiryMs < next) {
			next = r.lockExpiryMs
		}
	}
	return next
}

func (p *Partition) release(r *inFlight) {
	if r.deliveryCount >= p.cfg.DeliveryCountLimit {
		p.settle(r, Archived)
		return
	}
	p.settle(r, Available)
}

func (p *Partition) settle(r *inFlight, s RecordState) {
	if r.state == Acquired {
		p.acquired--
	}
	r.state, r.memberID, r.lockExpiryMs = s, "", 0
}

// advance moves the SPSO past acknowledged and archived records.
func (p *Partition) advance() {
	n := 0
	for n < len(p.records) && (p.records[n].state == Acknowledged || p.records[n].state == Archived) {
		n++
	}
	if n > 0 {
		p.startOffset += int64(n)
		p.records = append(p.records[:0], p.records[n:]...)
	}
}

// skipTo archives what lies below the log start offset: retention or
// DeleteRecords removed those records, so they can never be delivered.
func (p *Partition) skipTo(logStartOffset int64) {
	if logStartOffset <= p.startOffset {
		return
	}
	for i := range p.records {
		if p.startOffset+int64(i) < logStartOffset {
			p.settle(&p.records[i], Archived)
		}
	}
	p.advance()
	if p.startOffset < logStartOffset {
		p.startOffset = logStartOffset
	}
}

// String prints the state as the golden stories show it: the SPSO, the
// SPEO, then runs of in-flight records with their state, delivery count and
// holder.
func (p *Partition) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "spso=%d speo=%d acquired=%d", p.startOffset, p.EndOffset(), p.acquired)
	for _, batch := range p.runs(true) {
		fmt.Fprintf(&b, "\n  %d-%d %s delivery=%d", batch.FirstOffset, batch.LastOffset, batch.State, batch.DeliveryCount)
		if batch.memberID != "" {
			fmt.Fprintf(&b, " member=%s lock=%d", batch.memberID, batch.lockExpiryMs)
		}
	}
	return b.String()
}
