package controller

import (
	"fmt"
	"math"
	"slices"

	"github.com/sluicelog/sluice/internal/metadata"
)

// RegisterBrokerRequest is a broker (re)joining the cluster.
type RegisterBrokerRequest struct {
	BrokerID int32
	// Incarnation identifies this run of the broker process; a restart
	// draws a new one.
	Incarnation metadata.UUID
	// PreviousIncarnation is the incarnation of the process that ran
	// before this one on the broker's log directory (zero on a first
	// start), read under the directory's lock. It is the broker's proof
	// that the previous incarnation is dead: the lock is an flock the
	// kernel drops only when that process is gone, and a second process
	// configured with the same node.id on another directory cannot know
	// the incarnation (KIP-966's previous broker epoch plays this part in
	// Kafka, for clean shutdowns only).
	PreviousIncarnation metadata.UUID
	Listeners           []metadata.Listener
	Rack                string
}

// RegisterBrokerResponse carries the broker epoch the broker must quote in
// every later heartbeat and AlterPartition.
type RegisterBrokerResponse struct {
	BrokerEpoch int64
	Err         error
}

// RegisterBroker decides a registration. A broker registers fenced and is
// unfenced by a heartbeat once it has caught up with the metadata log.
//
// The broker epoch is img.Offset()+1: the offset the record gets if it is
// the next entry of the metadata log, as Kafka uses the record's offset.
// The driver's image offsets are Raft indexes and entries may slip in
// between (leader no-ops), so the record may land later than that; the
// epoch is then a little below its offset, which is harmless: all an epoch
// must be is larger than every earlier epoch of the broker (the Image holds
// them all, and we take one more if needed) and at most the offset the
// broker must replay before it counts as caught up.
//
// Registering the same incarnation again (a retried request) changes
// nothing and returns the epoch it has. A new incarnation is refused while
// the old one's session is alive, as in Kafka, so two processes configured
// with the same node.id cannot take turns; once the old session expires
// (FenceExpiredBrokers) the new one is accepted.
//
// Except for a restart: a new incarnation that names the registered one as
// its PreviousIncarnation replaces it at once, live session or not, so a
// broker killed and restarted serves again in a second instead of waiting
// out broker.session.timeout.ms. Fencing is not weakened: the new record
// carries a new broker epoch, so the old incarnation's heartbeats,
// AlterPartitions and producer-id requests are refused as stale, and in
// the same batch every partition the old incarnation led gets a new
// leader (and so a new leader epoch) and it leaves every ISR. The new
// incarnation registers fenced and out of every ISR: its log may have lost
// an unflushed tail, so it returns to an ISR only when a leader finds it
// caught up, and it leads only partitions whose ISR it is the last member
// of, as after a session expiry.
func (c *Controller) RegisterBroker(img *metadata.Image, req RegisterBrokerRequest, nowMs int64) ([]metadata.Record, RegisterBrokerResponse) {
	if req.BrokerID < 0 || req.Incarnation == (metadata.UUID{}) {
		return nil, RegisterBrokerResponse{Err: fmt.Errorf("%w: broker id %d with incarnation %x", ErrInvalidRequest, req.BrokerID, req.Incarnation[:])}
	}
	existing, registered := img.Broker(req.BrokerID)
	if registered && existing.Incarnation == req.Incarnation {
		c.lastHeartbeatMs[req.BrokerID] = nowMs
		return nil, RegisterBrokerResponse{BrokerEpoch: existing.Epoch}
	}
	restart := registered && req.PreviousIncarnation == existing.Incarnation
	if registered && !existing.Fenced && !restart && c.sessionAlive(req.BrokerID, nowMs) {
		return nil, RegisterBrokerResponse{Err: fmt.Errorf("%w: broker %d's session (incarnation %x) has not expired",
			ErrDuplicateBrokerRegistration, req.BrokerID, existing.Incarnation[:])}
	}
	epoch := img.Offset() + 1
	if registered && epoch <= existing.Epoch {
		epoch = existing.Epoch + 1
	}
	records := []metadata.Record{&metadata.RegisterBroker{
		BrokerID: req.BrokerID, Incarnation: req.Incarnation, BrokerEpoch: epoch,
		Listeners: slices.Clone(req.Listeners), Rack: req.Rack, Fenced: true,
	}}
	if registered && !existing.Fenced {
		records = append(records, c.moveLeadershipFrom(img, []int32{req.BrokerID})...)
	}
	c.lastHeartbeatMs[req.BrokerID] = nowMs
	return records, RegisterBrokerResponse{BrokerEpoch: epoch}
}

// sessionAlive reports whether a broker heartbeated within the session
// timeout. A broker this controller has not heard from yet (it just became
// active) gets a fresh session starting now, as Kafka's controller does on
// failover.
func (c *Controller) sessionAlive(id int32, nowMs int64) bool {
	last, ok := c.lastHeartbeatMs[id]
	if !ok {
		c.lastHeartbeatMs[id] = nowMs
		return true
	}
	return nowMs-last <= c.cfg.BrokerSessionTimeoutMs
}

// BrokerHeartbeatRequest is a broker's periodic heartbeat.
type BrokerHeartbeatRequest struct {
	BrokerID    int32
	BrokerEpoch int64
	// CurrentMetadataOffset is the last metadata offset the broker applied.
	CurrentMetadataOffset int64
	// WantFence keeps (or makes) the broker fenced, e.g. while it loads.
	WantFence bool
	// WantShutDown asks for a controlled shutdown: leadership moves away
	// before the broker stops.
	WantShutDown bool
}

// BrokerHeartbeatResponse is the broker's state once the records commit.
type BrokerHeartbeatResponse struct {
	IsCaughtUp     bool // replayed its own registration
	IsFenced       bool
	ShouldShutDown bool // leads nothing any more; safe to stop
	Err            error
}

// BrokerHeartbeat renews a broker's session and moves it between fenced
// and unfenced. A fenced broker is unfenced when it asks to be and has
// replayed the metadata up to its own registration, so it knows every
// partition it hosts before it can be given leadership.
func (c *Controller) BrokerHeartbeat(img *metadata.Image, req BrokerHeartbeatRequest, nowMs int64) ([]metadata.Record, BrokerHeartbeatResponse) {
	b, err := checkBroker(img, req.BrokerID, req.BrokerEpoch)
	if err != nil {
		return nil, BrokerHeartbeatResponse{Err: err}
	}
	c.lastHeartbeatMs[b.ID] = nowMs
	resp := BrokerHeartbeatResponse{IsCaughtUp: req.CurrentMetadataOffset >= b.Epoch, IsFenced: b.Fenced}
	var records []metadata.Record
	switch {
	case req.WantShutDown || req.WantFence:
		if !b.Fenced {
			records = c.fenceBrokers(img, []*metadata.BrokerImage{b})
		}
		resp.IsFenced, resp.ShouldShutDown = true, req.WantShutDown
	case b.Fenced && resp.IsCaughtUp:
		records = c.unfenceBroker(img, b)
		resp.IsFenced = false
	}
	return records, resp
}

// checkBroker returns the broker if it is registered with that epoch.
func checkBroker(img *metadata.Image, id int32, epoch int64) (*metadata.BrokerImage, error) {
	b, ok := img.Broker(id)
	if !ok {
		return nil, fmt.Errorf("%w: broker %d", ErrUnknownBroker, id)
	}
	if b.Epoch != epoch {
		return nil, fmt.Errorf("%w: broker %d has epoch %d, not %d", ErrStaleBrokerEpoch, id, b.Epoch, epoch)
	}
	return b, nil
}

// FenceExpiredBrokers fences every unfenced broker that has not
// heartbeated for longer than broker.session.timeout.ms, moving its
// leaderships to live ISR members and dropping it from ISRs. The driver
// calls it on a timer (NextExpiryMs says when). It returns the fenced ids.
func (c *Controller) FenceExpiredBrokers(img *metadata.Image, nowMs int64) ([]metadata.Record, []int32) {
	for id := range c.lastHeartbeatMs {
		if _, ok := img.Broker(id); !ok {
			delete(c.lastHeartbeatMs, id) // unregistered: forget it
		}
	}
	var expired []*metadata.BrokerImage
	var ids []int32
	for _, b := range img.Brokers() {
		if !b.Fenced && !c.sessionAlive(b.ID, nowMs) {
			expired = append(expired, b)
			ids = append(ids, b.ID)
		}
	}
	if len(expired) == 0 {
		return nil, nil
	}
	return c.fenceBrokers(img, expired), ids
}

// NextExpiryMs returns when the first live broker's session expires if no
// heartbeat arrives, for the driver's timer; false when no broker is live.
func (c *Controller) NextExpiryMs(img *metadata.Image, nowMs int64) (int64, bool) {
	next, found := int64(math.MaxInt64), false
	for _, b := range img.Brokers() {
		if b.Fenced {
			continue
		}
		c.sessionAlive(b.ID, nowMs) // starts a session for a broker not yet heard from
		next, found = min(next, c.lastHeartbeatMs[b.ID]+c.cfg.BrokerSessionTimeoutMs+1), true
	}
	return next, found
}

// fenceBrokers emits a FenceBroker per broker, then the partition changes
// that take away their leaderships and ISR memberships.
func (c *Controller) fenceBrokers(img *metadata.Image, brokers []*metadata.BrokerImage) []metadata.Record {
	records := make([]metadata.Record, 0, len(brokers))
	ids := make([]int32, len(brokers))
	for i, b := range brokers {
		records = append(records, &metadata.FenceBroker{BrokerID: b.ID, BrokerEpoch: b.Epoch})
		ids[i] = b.ID
	}
	return append(records, c.moveLeadershipFrom(img, ids)...)
}

// moveLeadershipFrom re-elects every partition that the brokers lead or
// are in the ISR of, with those brokers counted as dead.
func (c *Controller) moveLeadershipFrom(img *metadata.Image, ids []int32) []metadata.Record {
	dead := make(map[int32]bool, len(ids))
	for _, id := range ids {
		dead[id] = false
	}
	touches := func(p *metadata.PartitionImage) bool {
		_, leads := dead[p.Leader]
		return leads || slices.ContainsFunc(p.ISR, func(r int32) bool { _, ok := dead[r]; return ok })
	}
	return c.reelectWhere(img, aliveIn(img, dead), touches)
}

// unfenceBroker emits an UnfenceBroker and gives leaderless partitions a
// leader where the broker makes that possible: it is their last ISR member
// coming back, or (with unclean election allowed) any live replica.
func (c *Controller) unfenceBroker(img *metadata.Image, b *metadata.BrokerImage) []metadata.Record {
	records := []metadata.Record{&metadata.UnfenceBroker{BrokerID: b.ID, BrokerEpoch: b.Epoch}}
	alive := aliveIn(img, map[int32]bool{b.ID: true})
	touches := func(p *metadata.PartitionImage) bool {
		return p.Leader == metadata.NoLeader && slices.Contains(p.Replicas, b.ID)
	}
	return append(records, c.reelectWhere(img, alive, touches)...)
}

// AllocateProducerIDsResponse is a block of producer ids
// [ProducerIDStart, ProducerIDStart+ProducerIDLen) for the broker alone.
type AllocateProducerIDsResponse struct {
	ProducerIDStart int64
	ProducerIDLen   int32
	Err             error
}

// AllocateProducerIDs hands the next block of producer ids to a broker. The
// record moves the cluster's next id past the block, so no id is ever
// given twice, even across controller failovers.
func (c *Controller) AllocateProducerIDs(img *metadata.Image, brokerID int32, brokerEpoch int64) ([]metadata.Record, AllocateProducerIDsResponse) {
	if _, err := checkBroker(img, brokerID, brokerEpoch); err != nil {
		return nil, AllocateProducerIDsResponse{Err: err}
	}
	start, size := img.NextProducerID(), int64(c.cfg.ProducerIDBlockSize)
	if start > math.MaxInt64-size {
		return nil, AllocateProducerIDsResponse{Err: fmt.Errorf("%w: next id %d", ErrProducerIDsExhausted, start)}
	}
	rec := &metadata.ProducerIDs{BrokerID: brokerID, BrokerEpoch: brokerEpoch, NextProducerID: start + size}
	return []metadata.Record{rec}, AllocateProducerIDsResponse{ProducerIDStart: start, ProducerIDLen: c.cfg.ProducerIDBlockSize}
}
