package group

import (
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/golden"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files with the current outputs")

// TestGroupGolden runs the stories in testdata/*.txt. Commands (key=value
// arguments; w= names the waiter a reply goes to):
//
//	config delay=ms max-size=n min-session=ms max-session=ms retention=ms max-metadata=n
//	advance ms                      move time and Tick
//	join w g m i c p=name:meta,... s=session r=rebalance known skip
//	sync w g m i gen a=member:assignment,...
//	heartbeat w g m i gen
//	leave w g members=m|i:instance,...
//	commit w g m i gen o=topic-partition:offset,... meta=text retention=ms
//	fetch g [tps=topic-partition,...]
//	describe g | list [states=a,b] | delete w g | delete-offsets w g tps=...
//	expire | restart | groups
func TestGroupGolden(t *testing.T) {
	golden.RunDir(t, "testdata", *rewrite, func(t *testing.T) func(string) string {
		h := &harness{cfg: Config{MinSessionTimeoutMs: 10, MaxSessionTimeoutMs: 600000, MaxSize: 100,
			MaxMemberMetadataBytes: 1024, OffsetMetadataMaxBytes: 64, OffsetsRetentionMs: 100000, MaxGroups: 100}}
		h.shard = NewShard(h.cfg)
		return h.run
	})
}

type harness struct {
	cfg    Config
	shard  *Shard
	nowMs  int64
	nextID int
	log    []Record // every durable record, for restart
}

func args(fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func atoi(s string, def int64) int64 {
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

// long: a dispatch switch over the golden commands.
func (h *harness) run(command string) string {
	fields := strings.Fields(command)
	a := args(fields[1:])
	w := Waiter(atoi(a["w"], 0))
	gen := int32(atoi(a["gen"], -1))
	s := h.shard
	switch fields[0] {
	case "config":
		h.cfg.InitialRebalanceDelayMs = int32(atoi(a["delay"], int64(h.cfg.InitialRebalanceDelayMs)))
		h.cfg.MaxSize = int32(atoi(a["max-size"], int64(h.cfg.MaxSize)))
		h.cfg.MinSessionTimeoutMs = int32(atoi(a["min-session"], int64(h.cfg.MinSessionTimeoutMs)))
		h.cfg.MaxSessionTimeoutMs = int32(atoi(a["max-session"], int64(h.cfg.MaxSessionTimeoutMs)))
		h.cfg.OffsetsRetentionMs = atoi(a["retention"], h.cfg.OffsetsRetentionMs)
		h.cfg.MaxMemberMetadataBytes = int32(atoi(a["max-metadata"], int64(h.cfg.MaxMemberMetadataBytes)))
		h.cfg.MaxGroups = int(atoi(a["max-groups"], int64(h.cfg.MaxGroups)))
		s.cfg = h.cfg
		return "ok"
	case "advance":
		// As the runtime's timer would: a Tick at every deadline on the way.
		target := h.nowMs + atoi(fields[1], 0)
		for i, d := 0, s.NextDeadline(); d >= 0 && d <= target && i < 10000; i, d = i+1, s.NextDeadline() {
			h.nowMs = max(h.nowMs, d)
			s.Tick(h.nowMs, nil)
		}
		h.nowMs = target
		s.Tick(h.nowMs, nil)
	case "join":
		req := JoinRequest{GroupID: a["g"], MemberID: a["m"], GroupInstanceID: a["i"], ProtocolType: "consumer",
			SessionTimeoutMs: int32(atoi(a["s"], 1000)), RebalanceTimeoutMs: int32(atoi(a["r"], 5000)),
			ClientID: cmpOr(a["c"], "c"), ClientHost: "/127.0.0.1", RequireKnownMemberID: has(a, "known"),
			SupportsSkipAssignment: has(a, "skip")}
		if v, ok := a["type"]; ok {
			req.ProtocolType = v
		}
		for _, p := range strings.Split(cmpOr(a["p"], "range:sub"), ",") {
			if p == "" {
				continue
			}
			name, meta, _ := strings.Cut(p, ":")
			if u, err := strconv.Unquote(`"` + meta + `"`); err == nil {
				meta = u
			}
			req.Protocols = append(req.Protocols, Protocol{Name: name, Metadata: []byte(meta)})
		}
		if n := atoi(a["meta-bytes"], 0); n > 0 {
			req.Protocols[0].Metadata = make([]byte, n)
		}
		h.nextID++
		prefix := req.ClientID
		if req.GroupInstanceID != "" {
			prefix = req.GroupInstanceID
		}
		s.Join(h.nowMs, w, req, fmt.Sprintf("%s-%d", prefix, h.nextID), nil)
	case "sync":
		req := SyncRequest{GroupID: a["g"], MemberID: a["m"], GroupInstanceID: a["i"], GenerationID: gen}
		for _, as := range strings.Split(a["a"], ",") {
			if m, v, ok := strings.Cut(as, ":"); ok {
				req.Assignments = append(req.Assignments, MemberAssignment{MemberID: m, Assignment: []byte(v)})
			}
		}
		s.Sync(h.nowMs, w, req, nil)
	case "heartbeat":
		s.Heartbeat(h.nowMs, w, HeartbeatRequest{GroupID: a["g"], MemberID: a["m"], GroupInstanceID: a["i"], GenerationID: gen})
	case "leave":
		req := LeaveRequest{GroupID: a["g"]}
		for _, m := range strings.Split(a["members"], ",") {
			if inst, ok := strings.CutPrefix(m, "i:"); ok {
				req.Members = append(req.Members, LeavingMember{GroupInstanceID: inst})
			} else {
				req.Members = append(req.Members, LeavingMember{MemberID: m})
			}
		}
		s.Leave(h.nowMs, w, req)
	case "commit":
		req := CommitRequest{GroupID: a["g"], MemberID: a["m"], GroupInstanceID: a["i"], GenerationID: gen, RetentionTimeMs: atoi(a["retention"], -1)}
		for _, o := range strings.Split(a["o"], ",") {
			tp, off, _ := strings.Cut(o, ":")
			req.Topics = append(req.Topics, CommitTopic{Name: topicOf(tp), Partitions: []CommitPartition{{Partition: partitionOf(tp), Offset: atoi(off, 0), LeaderEpoch: -1, Metadata: a["meta"]}}})
		}
		s.CommitOffsets(h.nowMs, w, req, func(topic string, _ int32) error {
			if topic == "missing" {
				return fmt.Errorf("no such topic")
			}
			return nil
		})
	case "fetch":
		req := FetchRequest{GroupID: a["g"], Topics: parseTopics(a["tps"])}
		return formatFetch(s.FetchOffsets(req))
	case "describe":
		return formatDescription(s.DescribeGroup(a["g"]))
	case "list":
		var states []string
		if a["states"] != "" {
			states = strings.Split(a["states"], ",")
		}
		var b strings.Builder
		for _, l := range s.ListGroups(states) {
			fmt.Fprintf(&b, "%s type=%q state=%s\n", l.GroupID, l.ProtocolType, l.State)
		}
		return strings.TrimSuffix(b.String(), "\n")
	case "delete":
		s.DeleteGroup(w, a["g"])
	case "delete-offsets":
		s.DeleteOffsets(w, DeleteOffsetsRequest{GroupID: a["g"], Topics: parseTopics(a["tps"])})
	case "expire":
		s.ExpireOffsets(h.nowMs)
	case "restart":
		h.shard = NewShard(h.cfg)
		for _, r := range h.log {
			if err := h.shard.Load(h.nowMs, r.Key, r.Value); err != nil {
				return "load error: " + err.Error()
			}
		}
		return h.groups()
	case "groups":
		return h.groups()
	default:
		return "unknown command " + fields[0]
	}
	return h.flush()
}

func has(a map[string]string, k string) bool { _, ok := a[k]; return ok }

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func topicOf(tp string) string {
	i := strings.LastIndexByte(tp, '-')
	return tp[:i]
}

func partitionOf(tp string) int32 {
	i := strings.LastIndexByte(tp, '-')
	return int32(atoi(tp[i+1:], 0))
}

func parseTopics(s string) []FetchTopic {
	if s == "" {
		return nil
	}
	var out []FetchTopic
	for _, tp := range strings.Split(s, ",") {
		name, p := topicOf(tp), partitionOf(tp)
		if n := len(out); n > 0 && out[n-1].Name == name {
			out[n-1].Partitions = append(out[n-1].Partitions, p)
			continue
		}
		out = append(out, FetchTopic{Name: name, Partitions: []int32{p}})
	}
	return out
}

// flush plays the runtime: records are "appended", then Durable releases
// the replies, printed by waiter.
func (h *harness) flush() string {
	var lines []string
	for _, r := range h.shard.TakeRecords() {
		lines = append(lines, formatRecord(r))
		h.log = append(h.log, r)
	}
	replies := h.shard.Durable()
	slices.SortStableFunc(replies, func(a, b Reply) int { return int(a.Waiter) - int(b.Waiter) })
	for _, r := range replies {
		lines = append(lines, fmt.Sprintf("w%d: %s", r.Waiter, formatReply(r)))
	}
	lines = append(lines, fmt.Sprintf("next deadline: %d", h.shard.NextDeadline()))
	return strings.Join(lines, "\n")
}

func formatRecord(r Record) string {
	k, err := parseKey(r.Key)
	if err != nil {
		return "bad key: " + err.Error()
	}
	if !k.isGroup {
		if r.Value == nil {
			return fmt.Sprintf("record: delete offset %s %s-%d", k.group, k.tp.Topic, k.tp.Partition)
		}
		o, err := parseOffsetValue(r.Value)
		if err != nil {
			return "bad offset: " + err.Error()
		}
		return fmt.Sprintf("record: offset %s %s-%d=%d meta=%q committed=%d expire=%d", k.group, k.tp.Topic, k.tp.Partition,
			o.Offset, o.Metadata, o.CommitTimestampMs, o.ExpireTimestampMs)
	}
	if r.Value == nil {
		return "record: delete group " + k.group
	}
	g, err := parseGroupValue(r.Value)
	if err != nil {
		return "bad group: " + err.Error()
	}
	var ms []string
	for _, m := range g.members {
		ms = append(ms, fmt.Sprintf("%s(i=%q sub=%q assign=%q)", m.memberID, m.instanceID, m.subscription, m.assignment))
	}
	return fmt.Sprintf("record: group %s gen=%d type=%q protocol=%q leader=%q since=%d members=[%s]", k.group, g.generation,
		g.protocolType, g.protocol, g.leader, g.stateTimestampMs, strings.Join(ms, " "))
}

func formatReply(r Reply) string {
	var s string
	switch v := r.Value.(type) {
	case JoinResult:
		var ms []string
		for _, m := range v.Members {
			ms = append(ms, fmt.Sprintf("%s:%q", m.MemberID, m.Metadata))
		}
		s = fmt.Sprintf("join gen=%d member=%s leader=%s protocol=%s", v.GenerationID, v.MemberID, v.LeaderID, v.ProtocolName)
		if v.SkipAssignment {
			s += " skip-assignment"
		}
		if len(ms) > 0 {
			s += " members=[" + strings.Join(ms, " ") + "]"
		}
	case SyncResult:
		s = fmt.Sprintf("sync assignment=%q", v.Assignment)
	case LeaveResult:
		var ms []string
		for _, m := range v.Members {
			ms = append(ms, fmt.Sprintf("%s/%s:%v", m.MemberID, m.GroupInstanceID, errString(m.Err)))
		}
		s = "leave [" + strings.Join(ms, " ") + "]"
	case CommitResult:
		var ps []string
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				ps = append(ps, fmt.Sprintf("%s-%d:%s", t.Name, p.Partition, errString(p.Err)))
			}
		}
		s = "commit [" + strings.Join(ps, " ") + "]"
	case DeleteGroupResult:
		s = fmt.Sprintf("delete %s:%s", v.GroupID, errString(v.Err))
	case DeleteOffsetsResult:
		var ps []string
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				ps = append(ps, fmt.Sprintf("%s-%d:%s", t.Name, p.Partition, errString(p.Err)))
			}
		}
		s = "delete-offsets [" + strings.Join(ps, " ") + "]"
	case nil:
		s = "heartbeat"
	}
	if r.Err != nil {
		s += " error: " + r.Err.Error()
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func formatFetch(r FetchResult) string {
	var ps []string
	for _, t := range r.Topics {
		for _, p := range t.Partitions {
			ps = append(ps, fmt.Sprintf("%s-%d=%d", t.Name, p.Partition, p.Offset))
		}
	}
	return "offsets [" + strings.Join(ps, " ") + "]"
}

func formatDescription(d GroupDescription) string {
	var ms []string
	for _, m := range d.Members {
		ms = append(ms, fmt.Sprintf("%s(i=%q client=%s meta=%q assign=%q)", m.MemberID, m.GroupInstanceID, m.ClientID, m.Metadata, m.Assignment))
	}
	return fmt.Sprintf("%s state=%s type=%q protocol=%q members=[%s]", d.GroupID, d.State, d.ProtocolType, d.Protocol, strings.Join(ms, " "))
}

func (h *harness) groups() string {
	var lines []string
	for _, id := range slices.Sorted(mapsKeys(h.shard.groups)) {
		g := h.shard.groups[id]
		var ms []string
		for _, m := range g.members {
			ms = append(ms, fmt.Sprintf("%s(hb=%d assign=%q)", m.id, m.heartbeatDeadlineMs, m.assignment))
		}
		lines = append(lines, fmt.Sprintf("%s state=%s gen=%d protocol=%q leader=%q members=[%s] offsets=%s", id, g.state, g.generation,
			g.protocolName, g.leaderID, strings.Join(ms, " "), formatFetch(allOffsets(g.offsets))))
	}
	if len(lines) == 0 {
		return "no groups"
	}
	return strings.Join(lines, "\n")
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
