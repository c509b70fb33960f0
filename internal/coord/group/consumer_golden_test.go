package group

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/golden"
	"github.com/sluicelog/sluice/internal/metadata"
)

// TestGroupConsumerGolden runs the consumer-protocol (KIP-848) stories in
// testdata/consumer/*.txt. Commands (key=value arguments; w= names the
// waiter a reply goes to):
//
//	config assignors=uniform,range max-size=n session=ms
//	topic name partitions=n          create a topic or add partitions
//	hb w g m epoch [i=instance] [topics=a,b] [regex=re] [assignor=x] [r=ms]
//	   [owned=none|topic:0.1/topic:2]  (no owned=: unchanged, nil)
//	advance ms                       move time and Tick
//	commit w g m epoch o=topic-p:offset,...
//	join-classic w g                 a classic JoinGroup with an opaque subscription
//	cjoin w g m [i=instance] [id=new-id] [topics=a,b] [owned=t:0.1/u:2] [protocols=p1,p2] [v=version]
//	   [s=session] [r=rebalance] [known]   a classic consumer's JoinGroup (m=- without a member id)
//	csync w g m gen [i=instance] [a=m1@t:0.1/u:2,m2@t:2] [ud=bytes]
//	                                 a classic SyncGroup (a=: a leader's assignments, v1,
//	                                 with ud= as their user data);
//	                                 the assignment received is printed by partition
//	chb w g m gen [i=instance]       a classic Heartbeat
//	cleave w g m[,m2] [i=instance]   a classic LeaveGroup (of several members, batched)
//	classic g                        DescribeGroups' view of g
//	config policy=bidirectional|upgrade|downgrade|disabled classic-max=n
//	describe g | list | delete w g | restart
func TestGroupConsumerGolden(t *testing.T) {
	golden.RunDir(t, "testdata/consumer", *rewrite, func(t *testing.T) func(string) string {
		h := &consumerHarness{harness: harness{cfg: Config{MinSessionTimeoutMs: 10, MaxSessionTimeoutMs: 600000, MaxSize: 100,
			MaxMemberMetadataBytes: 1024, OffsetMetadataMaxBytes: 64, OffsetsRetentionMs: 100000, MaxGroups: 100,
			ConsumerSessionTimeoutMs: 1000, ConsumerHeartbeatIntervalMs: 100, ConsumerMaxSize: 10,
			ConsumerAssignors: []string{AssignorUniform, AssignorRange}}}, img: metadata.EmptyImage(), names: map[metadata.UUID]string{}}
		h.shard = NewShard(h.cfg)
		return h.run
	})
}

type consumerHarness struct {
	harness
	img   *metadata.Image
	names map[metadata.UUID]string
}

// long: a dispatch switch over the golden commands.
func (h *consumerHarness) run(command string) string {
	fields := strings.Fields(command)
	a := args(fields[1:])
	w := Waiter(atoi(a["w"], 0))
	switch fields[0] {
	case "config":
		if v := a["assignors"]; v != "" {
			h.cfg.ConsumerAssignors = strings.Split(v, ",")
		}
		h.cfg.ConsumerMaxSize = int32(atoi(a["max-size"], int64(h.cfg.ConsumerMaxSize)))
		h.cfg.ConsumerSessionTimeoutMs = int32(atoi(a["session"], int64(h.cfg.ConsumerSessionTimeoutMs)))
		h.cfg.MaxSize = int32(atoi(a["classic-max"], int64(h.cfg.MaxSize)))
		if v, ok := a["policy"]; ok {
			h.cfg.ConsumerMigrationPolicy = v
		}
		h.shard.cfg = h.cfg
		return "ok"
	case "topic":
		return h.topic(fields[1], int(atoi(a["partitions"], 1)))
	case "hb":
		h.shard.ConsumerHeartbeat(h.nowMs, w, h.heartbeatRequest(a), h.img)
	case "advance":
		target := h.nowMs + atoi(fields[1], 0)
		for i, d := 0, h.shard.NextDeadline(); d >= 0 && d <= target && i < 10000; i, d = i+1, h.shard.NextDeadline() {
			h.nowMs = max(h.nowMs, d)
			h.shard.Tick(h.nowMs, h.img)
		}
		h.nowMs = target
		h.shard.Tick(h.nowMs, h.img)
	case "commit":
		req := CommitRequest{GroupID: a["g"], MemberID: a["m"], GenerationID: int32(atoi(a["epoch"], -1)), RetentionTimeMs: -1}
		for _, o := range strings.Split(a["o"], ",") {
			tp, off, _ := strings.Cut(o, ":")
			req.Topics = append(req.Topics, CommitTopic{Name: topicOf(tp), Partitions: []CommitPartition{{Partition: partitionOf(tp), Offset: atoi(off, 0), LeaderEpoch: -1}}})
		}
		h.shard.CommitOffsets(h.nowMs, w, req, nil)
	case "join-classic":
		h.shard.Join(h.nowMs, w, JoinRequest{GroupID: a["g"], ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: []byte("sub")}},
			SessionTimeoutMs: 1000, RebalanceTimeoutMs: 1000, ClientID: "classic"}, "classic-1", h.img)
	case "cjoin":
		h.shard.Join(h.nowMs, w, h.classicJoinRequest(a), cmp.Or(a["id"], fmt.Sprintf("cm-%d", w)), h.img)
	case "csync":
		h.shard.Sync(h.nowMs, w, SyncRequest{GroupID: a["g"], MemberID: a["m"], GroupInstanceID: a["i"], GenerationID: int32(atoi(a["gen"], -1)),
			ProtocolType: "consumer", Assignments: leaderAssignments(a["a"], a["ud"])}, h.img)
	case "chb":
		h.shard.Heartbeat(h.nowMs, w, HeartbeatRequest{GroupID: a["g"], MemberID: a["m"], GroupInstanceID: a["i"], GenerationID: int32(atoi(a["gen"], -1))})
	case "cleave":
		req := LeaveRequest{GroupID: a["g"]}
		for _, m := range strings.Split(a["m"], ",") {
			req.Members = append(req.Members, LeavingMember{MemberID: m, GroupInstanceID: a["i"]})
		}
		h.shard.Leave(h.nowMs, w, req)
	case "classic":
		return h.describeClassic(h.shard.DescribeGroup(fields[1]))
	case "describe":
		return h.describe(h.shard.DescribeConsumerGroup(fields[1], h.img))
	case "list":
		var b strings.Builder
		for _, l := range h.shard.ListGroups(nil) {
			fmt.Fprintf(&b, "%s type=%s protocol=%q state=%s\n", l.GroupID, l.Type, l.ProtocolType, l.State)
		}
		return strings.TrimSuffix(b.String(), "\n")
	case "delete":
		h.shard.DeleteGroup(w, a["g"])
	case "restart":
		h.shard = NewShard(h.cfg)
		for _, r := range h.log {
			if err := h.shard.Load(h.nowMs, r.Key, r.Value); err != nil {
				return "load error: " + err.Error()
			}
		}
		var lines []string
		for _, id := range slices.Sorted(mapsKeys(h.shard.groups)) {
			switch g := h.shard.groups[id]; {
			case g.consumer != nil:
				lines = append(lines, h.describe(h.shard.DescribeConsumerGroup(id, h.img)))
			case len(g.members) > 0:
				lines = append(lines, h.describeClassic(h.shard.DescribeGroup(id)))
			}
		}
		return strings.Join(lines, "\n")
	default:
		return "unknown command " + fields[0]
	}
	return h.flush()
}

// topic creates a topic (its id is derived from its name) or adds
// partitions to it.
func (h *consumerHarness) topic(name string, partitions int) string {
	var id metadata.UUID
	copy(id[:], name)
	d := metadata.NewDelta(h.img)
	from := 0
	if t, ok := h.img.Topic(name); ok {
		from = len(t.Partitions)
	} else if err := d.Replay(&metadata.Topic{Name: name, ID: id}); err != nil {
		return err.Error()
	}
	for p := from; p < partitions; p++ {
		if err := d.Replay(&metadata.Partition{TopicID: id, Partition: int32(p), Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}); err != nil {
			return err.Error()
		}
	}
	h.img = d.Apply(h.img.Offset() + 1)
	h.names[id] = name
	return "ok"
}

func (h *consumerHarness) heartbeatRequest(a map[string]string) ConsumerHeartbeatRequest {
	req := ConsumerHeartbeatRequest{GroupID: a["g"], MemberID: a["m"], MemberEpoch: int32(atoi(a["epoch"], 0)), InstanceID: a["i"],
		RebalanceTimeoutMs: int32(atoi(a["r"], -1)), ClientID: "c", ClientHost: "/127.0.0.1"}
	if req.MemberEpoch == 0 && req.RebalanceTimeoutMs < 0 {
		req.RebalanceTimeoutMs = 500
	}
	if v, ok := a["topics"]; ok {
		req.SubscribedTopicNames = []string{}
		if v != "" {
			req.SubscribedTopicNames = strings.Split(v, ",")
		}
	}
	if v, ok := a["regex"]; ok {
		req.SubscribedTopicRegex = &v
	}
	if v, ok := a["assignor"]; ok {
		req.ServerAssignor = &v
	}
	if v, ok := a["owned"]; ok {
		req.OwnedTopics = []ConsumerTopicPartitions{}
		for _, t := range strings.Split(v, "/") {
			name, ps, ok := strings.Cut(t, ":")
			if !ok {
				continue
			}
			tp := ConsumerTopicPartitions{}
			if ti, ok := h.img.Topic(name); ok {
				tp.TopicID = ti.ID
			}
			for _, p := range strings.Split(ps, ".") {
				tp.Partitions = append(tp.Partitions, int32(atoi(p, 0)))
			}
			req.OwnedTopics = append(req.OwnedTopics, tp)
		}
	}
	return req
}

func (h *consumerHarness) flush() string {
	var lines []string
	for _, r := range h.shard.TakeRecords() {
		lines = append(lines, h.formatRecord(r))
		h.log = append(h.log, r)
	}
	replies := h.shard.Durable()
	slices.SortStableFunc(replies, func(a, b Reply) int { return int(a.Waiter) - int(b.Waiter) })
	for _, r := range replies {
		s := ""
		if v, ok := r.Value.(SyncResult); ok && r.Err == nil {
			s = "sync assignment=" + h.assignment(v.Assignment)
		} else if v, ok := r.Value.(ConsumerHeartbeatResult); ok {
			s = fmt.Sprintf("hb member=%s epoch=%d", v.MemberID, v.MemberEpoch)
			if v.HasAssignment {
				s += " assignment=" + h.partitions(v.Assignment)
			}
			if r.Err != nil {
				s += " error: " + r.Err.Error()
			}
		} else {
			s = formatReply(r)
		}
		lines = append(lines, fmt.Sprintf("w%d: %s", r.Waiter, s))
	}
	lines = append(lines, fmt.Sprintf("next deadline: %d", h.shard.NextDeadline()))
	return strings.Join(lines, "\n")
}

// partitions prints topic partitions by name: [a:0,1 b:2].
func (h *consumerHarness) partitions(tps []ConsumerTopicPartitions) string {
	var out []string
	for _, t := range tps {
		ps := make([]string, len(t.Partitions))
		for i, p := range t.Partitions {
			ps[i] = fmt.Sprint(p)
		}
		out = append(out, h.names[t.TopicID]+":"+strings.Join(ps, ","))
	}
	slices.Sort(out)
	return "[" + strings.Join(out, " ") + "]"
}

func (h *consumerHarness) formatRecord(r Record) string {
	t, ok := consumerRecordType(r.Key)
	if !ok {
		return formatRecord(r)
	}
	kr := reader{b: r.Key[2:]}
	key := kr.string()
	if t != recordConsumerGroupMetadata && t != recordConsumerGroupTargetMetadata {
		key += "/" + kr.string()
	}
	names := map[int16]string{3: "consumer-group", 5: "member", 6: "target-epoch", 7: "target", 8: "current"}
	if r.Value == nil {
		return fmt.Sprintf("record: delete %s %s", names[t], key)
	}
	fr := flexReader{reader{b: r.Value[2:]}}
	var body string
	switch t {
	case recordConsumerGroupMetadata, recordConsumerGroupTargetMetadata:
		body = fmt.Sprintf("epoch=%d", fr.int32())
	case recordConsumerGroupMemberMetadata:
		m := &consumerMember{}
		loadMemberRecord(&fr, t, m, newConsumerGroup())
		body = fmt.Sprintf("instance=%q topics=%v regex=%q assignor=%q", m.instanceID, m.subscribedTopicNames, m.subscribedTopicRegex, m.serverAssignor)
		if m.classic != nil {
			var ps []string
			for _, p := range m.classic.protocols {
				ps = append(ps, p.Name)
			}
			body += fmt.Sprintf(" classic=session:%d/protocols:%s", m.classic.sessionTimeoutMs, strings.Join(ps, ","))
		}
	case recordConsumerGroupTargetMember:
		body = h.partitions(topicPartitionsOf(fr.topicPartitions()))
	case recordConsumerGroupCurrentAssignment:
		m := &consumerMember{}
		loadMemberRecord(&fr, t, m, newConsumerGroup())
		body = fmt.Sprintf("epoch=%d previous=%d state=%d assigned=%s revoking=%s", m.memberEpoch, m.previousMemberEpoch, m.state,
			h.partitions(topicPartitionsOf(m.assigned)), h.partitions(topicPartitionsOf(m.pendingRevocation)))
	}
	if fr.err != nil {
		body += " error: " + fr.err.Error()
	}
	return fmt.Sprintf("record: %s %s %s", names[t], key, body)
}

func (h *consumerHarness) describe(d ConsumerGroupDescription) string {
	if d.Err != nil {
		return fmt.Sprintf("%s error: %v", d.GroupID, d.Err)
	}
	var lines []string
	lines = append(lines, fmt.Sprintf("%s state=%s epoch=%d assignment-epoch=%d assignor=%s", d.GroupID, d.State, d.GroupEpoch, d.AssignmentEpoch, d.Assignor))
	for _, m := range d.Members {
		lines = append(lines, fmt.Sprintf("  %s instance=%q epoch=%d assigned=%s target=%s", m.MemberID, m.InstanceID, m.MemberEpoch,
			h.partitions(m.Assignment), h.partitions(m.TargetAssignment)))
	}
	return strings.Join(lines, "\n")
}

// classicJoinRequest builds a classic consumer's JoinGroup with a real
// ConsumerProtocolSubscription.
func (h *consumerHarness) classicJoinRequest(a map[string]string) JoinRequest {
	memberID := a["m"]
	if memberID == "-" {
		memberID = ""
	}
	version := int16(atoi(a["v"], 1))
	var owned []namedPartitions
	if v := a["owned"]; v != "" {
		for _, t := range strings.Split(v, "/") {
			name, ps, _ := strings.Cut(t, ":")
			np := namedPartitions{topic: name}
			for _, p := range strings.Split(ps, ".") {
				np.partitions = append(np.partitions, int32(atoi(p, 0)))
			}
			owned = append(owned, np)
		}
	}
	var topics []string
	if v := a["topics"]; v != "" {
		topics = strings.Split(v, ",")
	}
	sub := testSubscription(version, topics, owned)
	req := JoinRequest{GroupID: a["g"], MemberID: memberID, GroupInstanceID: a["i"], ProtocolType: "consumer",
		SessionTimeoutMs: int32(atoi(a["s"], 1000)), RebalanceTimeoutMs: int32(atoi(a["r"], 1000)), ClientID: "classic", ClientHost: "/127.0.0.1"}
	_, req.RequireKnownMemberID = a["known"]
	for _, p := range strings.Split(cmp.Or(a["protocols"], "range"), ",") {
		req.Protocols = append(req.Protocols, Protocol{Name: p, Metadata: sub})
	}
	return req
}

// testSubscription encodes a ConsumerProtocolSubscription (v0–v3).
func testSubscription(version int16, topics []string, owned []namedPartitions) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = appendString(b, t)
	}
	b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	if version >= 1 {
		b = binary.BigEndian.AppendUint32(b, uint32(len(owned)))
		for _, t := range owned {
			b = appendString(b, t.topic)
			b = binary.BigEndian.AppendUint32(b, uint32(len(t.partitions)))
			for _, p := range t.partitions {
				b = binary.BigEndian.AppendUint32(b, uint32(p))
			}
		}
	}
	if version >= 2 {
		b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	}
	if version >= 3 {
		b = binary.BigEndian.AppendUint16(b, 0xffff)
	}
	return b
}

// assignment prints a ConsumerProtocolAssignment: v1[a:0,1 b:2].
func (h *consumerHarness) assignment(b []byte) string {
	tps, _, err := parseConsumerAssignment(b)
	if err != nil {
		return "error: " + err.Error()
	}
	var out []string
	for _, t := range tps {
		ps := make([]string, len(t.partitions))
		for i, p := range t.partitions {
			ps[i] = fmt.Sprint(p)
		}
		out = append(out, t.topic+":"+strings.Join(ps, ","))
	}
	slices.Sort(out)
	return fmt.Sprintf("v%d[%s]", protocolVersion(b), strings.Join(out, " "))
}

func (h *consumerHarness) describeClassic(d GroupDescription) string {
	lines := []string{fmt.Sprintf("%s classic state=%s protocol-type=%s protocol=%s", d.GroupID, d.State, d.ProtocolType, d.Protocol)}
	for _, m := range d.Members {
		line := fmt.Sprintf("  %s instance=%q", m.MemberID, m.GroupInstanceID)
		if d.Protocol != "" {
			line += " assignment=" + h.assignment(m.Assignment)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// leaderAssignments parses m1@t:0.1/u:2,m2@t:2 into v1 assignments,
// with userData as each one's user data (null when empty).
func leaderAssignments(v, userData string) []MemberAssignment {
	var out []MemberAssignment
	for _, ma := range strings.Split(v, ",") {
		member, tps, ok := strings.Cut(ma, "@")
		if !ok {
			continue
		}
		var named []namedPartitions
		for _, t := range strings.Split(tps, "/") {
			name, ps, _ := strings.Cut(t, ":")
			np := namedPartitions{topic: name}
			for _, p := range strings.Split(ps, ".") {
				np.partitions = append(np.partitions, int32(atoi(p, 0)))
			}
			named = append(named, np)
		}
		b := encodeConsumerAssignment(1, named)
		if userData != "" {
			b = binary.BigEndian.AppendUint32(b[:len(b)-4], uint32(len(userData)))
			b = append(b, userData...)
		}
		out = append(out, MemberAssignment{MemberID: member, Assignment: b})
	}
	return out
}
