package sharegroup

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/golden"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files with the current outputs")

// TestShareGroupGolden runs the stories in testdata/*.txt. Commands
// (key=value arguments):
//
//	partition spso=n lock=ms limit=n max-locks=n   a new share partition
//	acquire m=member end=offset max=n             Acquire (prints FirstAcquirable first)
//	ack m=member first=n last=n type=accept|release|reject|gap
//	expire | release m=member | restart            lock expiry, a member gone, a reload
//	topic name=partitions                          a topic's partition count
//	heartbeat m=member epoch=n subs=a,b            ShareGroupHeartbeat (subs=- unchanged)
//	group                                          the members, epochs, assignments
//	advance ms                                     move time (group sessions expire)
//	records                                        the group's records since the last
//	                                               (TakeRecords), then the log replayed
//	                                               whole and compacted against the group
//	begin-delete also=topic,...                    BeginDelete (also: subscribed topics)
//	delete                                         DeleteRecords, and the log replayed
func TestShareGroupGolden(t *testing.T) {
	golden.RunDir(t, "testdata", *rewrite, func(t *testing.T) func(string) string {
		h := &harness{group: NewGroup("g"), topics: map[string]int32{},
			gcfg: GroupConfig{SessionTimeoutMs: 1000, HeartbeatIntervalMs: 100, MaxSize: 3}}
		return h.run
	})
}

type harness struct {
	nowMs  int64
	pcfg   PartitionConfig
	part   *Partition
	hw     int64
	gcfg   GroupConfig
	group  *Group
	topics map[string]int32
	log    []Record // the group's records, for records / begin-delete / delete
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

var ackTypes = map[string]AcknowledgeType{"accept": AckAccept, "release": AckRelease, "reject": AckReject, "gap": AckGap, "renew": AckRenew, "undefined": AcknowledgeType(5)}

// long: a dispatch switch over the golden commands.
func (h *harness) run(command string) string {
	fields := strings.Fields(command)
	a := args(fields[1:])
	switch fields[0] {
	case "partition":
		h.pcfg = PartitionConfig{LockDurationMs: atoi(a["lock"], 1000), DeliveryCountLimit: int16(atoi(a["limit"], 5)), MaxRecordLocks: int(atoi(a["max-locks"], 200))}
		h.part = NewPartition(h.pcfg, atoi(a["spso"], 0))
		return h.part.String()
	case "acquire":
		first, ok := h.part.FirstAcquirable(atoi(a["log-start"], 0), atoi(a["hw"], 1<<40))
		if !ok {
			return "nothing to acquire\n" + h.part.String()
		}
		got := h.part.Acquire(a["m"], atoi(a["end"], 0), int(atoi(a["max"], 1<<20)), h.nowMs)
		return fmt.Sprintf("read from %d, acquired %v\n%s", first, got, h.part)
	case "ack":
		err := h.part.Acknowledge(a["m"], atoi(a["first"], 0), atoi(a["last"], 0), ackTypes[a["type"]], h.nowMs)
		if err != nil {
			return "error: " + err.Error()
		}
		return h.part.String()
	case "expire":
		n := h.part.ExpireLocks(h.nowMs)
		return fmt.Sprintf("%d locks expired\n%s", n, h.part)
	case "release":
		n := h.part.ReleaseMember(a["m"])
		return fmt.Sprintf("%d released\n%s", n, h.part)
	case "restart":
		st := h.part.State()
		h.part = LoadPartition(h.pcfg, st)
		return fmt.Sprintf("state %+v\n%s", st, h.part)
	case "topic":
		for k, v := range a {
			h.topics[k] = int32(atoi(v, 0))
		}
		return "ok"
	case "heartbeat":
		return h.heartbeat(a)
	case "group":
		return h.groupString()
	case "records":
		return h.appendRecords(h.group.TakeRecords(testTopicID))
	case "begin-delete":
		also := map[[16]byte]string{}
		for _, topic := range strings.Split(a["also"], ",") {
			if id, ok := testTopicID(topic); ok {
				also[id] = topic
			}
		}
		r, ok := h.group.BeginDelete(also)
		if !ok {
			return "nothing to delete"
		}
		return h.appendRecords([]Record{r})
	case "delete":
		return h.appendRecords(h.group.DeleteRecords())
	case "advance":
		h.nowMs += atoi(fields[1], 0)
		gone := h.group.Expire(h.gcfg, testTopics(h.partitionCount), h.nowMs)
		return fmt.Sprintf("now %d, expired %v\n%s", h.nowMs, gone, h.groupString())
	}
	return "unknown command " + fields[0]
}

func (h *harness) partitionCount(topic string) int32 { return h.topics[topic] }

func (h *harness) heartbeat(a map[string]string) string {
	hb := Heartbeat{MemberID: a["m"], MemberEpoch: int32(atoi(a["epoch"], 0))}
	if s, ok := a["subs"]; ok && s != "-" {
		hb.SubscribedTopicNames = strings.Split(s, ",")
	}
	res, err := h.group.Heartbeat(h.gcfg, hb, testTopics(h.partitionCount), h.nowMs)
	if err != nil {
		return "error: " + err.Error()
	}
	out := fmt.Sprintf("epoch=%d interval=%d", res.MemberEpoch, res.HeartbeatIntervalMs)
	if res.Left {
		out += " left"
	}
	if res.Assignment != nil {
		out += " assignment=" + assignmentString(res.Assignment)
	}
	return out
}

func (h *harness) groupString() string {
	var b strings.Builder
	fmt.Fprintf(&b, "group epoch=%d state=%s", h.group.Epoch, h.group.State())
	for _, m := range h.group.Members() {
		fmt.Fprintf(&b, "\n  %s epoch=%d subs=%v assignment=%s", m.ID, m.Epoch, m.SubscribedTopicNames, assignmentString(m.Assignment))
	}
	return b.String()
}

func assignmentString(a map[string][]int32) string {
	topics := make([]string, 0, len(a))
	for t := range a {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	parts := make([]string, 0, len(topics))
	for _, t := range topics {
		parts = append(parts, fmt.Sprintf("%s%v", t, a[t]))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// appendRecords prints records and appends them to the log, then replays
// the log whole and compacted: each must give the group as it is in
// memory (or no group once it is deleted).
func (h *harness) appendRecords(rs []Record) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(recordString(r) + "\n")
	}
	h.log = append(h.log, rs...)
	want := describe(map[string]*Group{"g": h.group})
	if !h.group.written && !h.group.stateWritten {
		want = ""
	}
	for _, log := range [][]Record{h.log, compact(h.log)} {
		groups := map[string]*Group{}
		for _, r := range log {
			if _, err := LoadRecord(groups, r.Key, r.Value, testTopicName, 0); err != nil {
				return fmt.Sprintf("%sreplay: %v", &b, err)
			}
		}
		if got := describe(groups); got != want {
			return fmt.Sprintf("%sreplay of %d records gives\n%swant\n%s", &b, len(log), got, want)
		}
	}
	fmt.Fprintf(&b, "replayed whole and compacted: %d records, %d live", len(h.log), len(compact(h.log)))
	return b.String()
}

// recordString names a record's type and key, and shows the share state
// of a type 15 value.
func recordString(r Record) string {
	typ := r.Key[1]
	kr := flexReader{b: r.Key[2:]}
	key := kr.fixedString()
	if len(kr.b) > 0 {
		key += "/" + kr.fixedString()
	}
	out := fmt.Sprintf("type %d %s", typ, key)
	switch {
	case r.Value == nil:
		return out + " tombstone"
	case typ == recordStatePartitionMeta:
		g := NewGroup("")
		vr := flexReader{b: r.Value[2:]}
		g.loadStateMeta(&vr)
		return fmt.Sprintf("%s initialized=%v deleting=%v", out, g.InitializedTopics(testTopicName), stateTopicNames(g.DeletingTopics()))
	}
	return out
}
