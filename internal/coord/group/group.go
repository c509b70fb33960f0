package group

// state is a group's place in the classic protocol:
//
//	Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//	  ▲                 ▲        │ (no members left)                 │ leader's sync durable
//	  └─────────────────┼────────┘                                   ▼
//	                    └──── join / leave / session expiry ────── Stable
//
// Dead is a group being removed; the shard forgets it at once, so it is
// only ever reported for unknown groups.
type state uint8

const (
	stateEmpty state = iota
	statePreparingRebalance
	stateCompletingRebalance
	stateStable
	stateDead
)

func (s state) String() string {
	switch s {
	case stateEmpty:
		return StateEmpty
	case statePreparingRebalance:
		return StatePreparingRebalance
	case stateCompletingRebalance:
		return StateCompletingRebalance
	case stateStable:
		return StateStable
	}
	return StateDead
}

// Group is one consumer group. Fields for members and rebalancing stay nil
// or zero while the group is idle, so an idle group costs little more than
// its offsets.
type Group struct {
	id               string
	state            state
	protocolType     string
	protocolName     string // the selected protocol; "" while Empty
	generation       int32
	leaderID         string
	stateTimestampMs int64 // when the group entered its state (expiry counts from Empty)
	hasRecord        bool  // a group metadata record exists (a tombstone is owed on delete)

	members    []*member // in join order: the first is the next leader
	byID       map[string]*member
	byInstance map[string]*member // static members by group.instance.id
	pending    map[string]int64   // KIP-394 member ids handed out → expiry
	offsets    map[TopicPartition]Offset
	// consumer is set for a consumer-protocol (KIP-848) group; members
	// above then stay empty.
	consumer *consumerGroup

	// PreparingRebalance: when the join phase ends. During the initial
	// delay (group.initial.rebalance.delay.ms) initialDelay is set and
	// initialRemainingMs is what the rebalance timeout leaves to extend it.
	rebalanceDeadlineMs int64
	initialDelay        bool
	newMemberAdded      bool
	initialRemainingMs  int64
}

// member is one member of a group.
type member struct {
	id, instanceID, clientID, clientHost string
	sessionTimeoutMs, rebalanceTimeoutMs int32
	protocols                            []Protocol
	assignment                           []byte
	joinWaiter                           Waiter // set while awaiting the end of the join phase
	awaitingJoin                         bool
	syncWaiter                           Waiter // set while awaiting the leader's assignment
	heartbeatDeadlineMs                  int64
	supportsSkipAssignment               bool
}

// metadata returns the member's metadata for protocol, nil if it has none.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// sameProtocols reports whether ps equal the member's protocols (names,
// order and metadata): a rejoin with the same ones needs no rebalance.
func (m *member) sameProtocols(ps []Protocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i := range ps {
		if ps[i].Name != m.protocols[i].Name || string(ps[i].Metadata) != string(m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

func (g *Group) add(m *member) {
	if g.byID == nil {
		g.byID = map[string]*member{}
	}
	g.members = append(g.members, m)
	g.byID[m.id] = m
	if m.instanceID != "" {
		if g.byInstance == nil {
			g.byInstance = map[string]*member{}
		}
		g.byInstance[m.instanceID] = m
	}
	if g.leaderID == "" {
		g.leaderID = m.id
	}
	delete(g.pending, m.id)
}

// electJoinedLeader keeps the leader if it rejoined, else makes the first
// member that rejoined the leader; false when none did.
func (g *Group) electJoinedLeader() bool {
	if m := g.byID[g.leaderID]; m != nil && m.awaitingJoin {
		return true
	}
	for _, m := range g.members {
		if m.awaitingJoin {
			g.leaderID = m.id
			return true
		}
	}
	return false
}

func (g *Group) remove(m *member) {
	for i, x := range g.members {
		if x == m {
			g.members = append(g.members[:i], g.members[i+1:]...)
			break
		}
	}
	delete(g.byID, m.id)
	if m.instanceID != "" && g.byInstance[m.instanceID] == m {
		delete(g.byInstance, m.instanceID)
	}
	if len(g.members) == 0 {
		g.members, g.byID, g.byInstance = nil, nil, nil
	}
	if g.leaderID == m.id {
		g.leaderID = ""
		if len(g.members) > 0 {
			g.leaderID = g.members[0].id
		}
	}
}

// rebalanceTimeoutMs is the longest rebalance timeout of the members, the
// join phase's bound (as Kafka).
func (g *Group) rebalanceTimeoutMs() int64 {
	var t int32
	for _, m := range g.members {
		t = max(t, m.rebalanceTimeoutMs)
	}
	return int64(t)
}

// allJoined: every member rejoined and no handed-out member id is pending.
func (g *Group) allJoined() bool {
	if len(g.pending) > 0 {
		return false
	}
	for _, m := range g.members {
		if !m.awaitingJoin {
			return false
		}
	}
	return true
}

// supportsProtocols reports whether a member offering ps may join: one of
// them must be supported by every current member.
func (g *Group) supportsProtocols(protocolType string, ps []Protocol) bool {
	if len(g.members) == 0 {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.allSupport(p.Name) {
			return true
		}
	}
	return false
}

func (g *Group) allSupport(name string) bool {
	for _, m := range g.members {
		if !hasProtocol(m.protocols, name) {
			return false
		}
	}
	return true
}

func hasProtocol(ps []Protocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol every member supports by vote: each
// member votes for the first such protocol in its own preference order;
// the most votes win, ties going to the leader's preference (Kafka breaks
// them arbitrarily).
func (g *Group) selectProtocol() string {
	if len(g.members) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if g.allSupport(p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	leader := g.byID[g.leaderID]
	if leader == nil {
		leader = g.members[0]
	}
	best, bestVotes := "", 0
	for _, p := range leader.protocols {
		if v := votes[p.Name]; v > bestVotes {
			best, bestVotes = p.Name, v
		}
	}
	return best
}

// nextDeadline is the group's earliest deadline, or -1.
func (g *Group) nextDeadline() int64 {
	next := int64(-1)
	consider := func(d int64) {
		if next < 0 || d < next {
			next = d
		}
	}
	if g.state == statePreparingRebalance {
		consider(g.rebalanceDeadlineMs)
	}
	if g.consumer != nil {
		if d := g.consumer.nextDeadline(); d >= 0 {
			consider(d)
		}
	}
	for _, d := range g.pending {
		consider(d)
	}
	for _, m := range g.members {
		// A member blocked in JoinGroup does not heartbeat: the join
		// phase's deadline bounds it instead.
		if !m.awaitingJoin {
			consider(m.heartbeatDeadlineMs)
		}
	}
	return next
}

// record is the group's metadata record value.
func (g *Group) record() *groupRecord {
	r := &groupRecord{protocolType: g.protocolType, generation: g.generation, protocol: g.protocolName,
		leader: g.leaderID, stateTimestampMs: g.stateTimestampMs}
	for _, m := range g.members {
		r.members = append(r.members, groupRecordMember{
			memberID: m.id, instanceID: m.instanceID, clientID: m.clientID, clientHost: m.clientHost,
			rebalanceTimeoutMs: m.rebalanceTimeoutMs, sessionTimeoutMs: m.sessionTimeoutMs,
			subscription: m.metadata(g.protocolName), assignment: m.assignment,
		})
	}
	return r
}

// subscribedTopics are the topics the group's consumers subscribe to, from
// their ConsumerProtocolSubscription metadata; ok is false when the group
// is not a consumer group or a subscription does not parse.
func (g *Group) subscribedTopics() (topics map[string]bool, ok bool) {
	if g.consumer != nil {
		return g.consumer.subscribedTopicNames(nil), true
	}
	if g.protocolType != "consumer" || g.protocolName == "" {
		return nil, false
	}
	topics = map[string]bool{}
	for _, m := range g.members {
		if !parseSubscriptionTopics(m.metadata(g.protocolName), topics) {
			return nil, false
		}
	}
	return topics, true
}

// parseSubscriptionTopics adds the topics of a ConsumerProtocolSubscription
// (version int16, topics array of string, ...) to topics.
func parseSubscriptionTopics(b []byte, topics map[string]bool) bool {
	r := reader{b: b}
	r.int16()
	n := int(r.int32())
	if r.err != nil || n < 0 || !r.need(n*2) {
		return false
	}
	for range n {
		t := r.string()
		if r.err != nil {
			return false
		}
		topics[t] = true
	}
	return true
}
