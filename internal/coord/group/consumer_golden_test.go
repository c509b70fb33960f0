package group

import (
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
//	join-classic w g                 a classic JoinGroup
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
			h.shard.Tick(h.nowMs)
		}
		h.nowMs = target
		h.shard.Tick(h.nowMs)
	case "commit":
		req := CommitRequest{GroupID: a["g"], MemberID: a["m"], GenerationID: int32(atoi(a["epoch"], -1)), RetentionTimeMs: -1}
		for _, o := range strings.Split(a["o"], ",") {
			tp, off, _ := strings.Cut(o, ":")
			req.Topics = append(req.Topics, CommitTopic{Name: topicOf(tp), Partitions: []CommitPartition{{Partition: partitionOf(tp), Offset: atoi(off, 0), LeaderEpoch: -1}}})
		}
		h.shard.CommitOffsets(h.nowMs, w, req, nil)
	case "join-classic":
		h.shard.Join(h.nowMs, w, JoinRequest{GroupID: a["g"], ProtocolType: "consumer", Protocols: []Protocol{{Name: "range", Metadata: []byte("sub")}},
			SessionTimeoutMs: 1000, RebalanceTimeoutMs: 1000, ClientID: "classic"}, "classic-1")
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
			if h.shard.groups[id].consumer != nil {
				lines = append(lines, h.describe(h.shard.DescribeConsumerGroup(id, h.img)))
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
		if v, ok := r.Value.(ConsumerHeartbeatResult); ok {
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
