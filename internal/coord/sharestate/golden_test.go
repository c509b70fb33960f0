package sharestate

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/golden"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files with the current outputs")

// TestShareStateGolden runs the stories in testdata/*.txt against a shard
// and the log of the records it decided. Commands (key=value arguments;
// g group, t topic (its id is the name's bytes), p partition):
//
//	write g t p state=n leader=n spso=n batches=first-last:state:count,...
//	read g t p leader=n | summary g t p | init g t p state=n spso=n | delete g t p
//	delete-topics t,...   the controller deleted these topics
//	replay     a new shard replays the whole log: prints it, and whether it matches
//	compact    the log keeps only each key's newest record, then replay as above
//	advance ms move time
func TestShareStateGolden(t *testing.T) {
	golden.RunDir(t, "testdata", *rewrite, func(t *testing.T) func(string) string {
		h := &harness{cfg: Config{UpdatesPerSnapshot: 3, MaxBatches: 8, MaxStates: 4}}
		h.shard = NewShard(h.cfg)
		return h.run
	})
}

type harness struct {
	cfg   Config
	shard *Shard
	log   []Record
	nowMs int64
	next  Waiter
}

func args(fields []string) map[string]string {
	m := map[string]string{}
	for _, f := range fields {
		k, v, _ := strings.Cut(f, "=")
		m[k] = v
	}
	return m
}

func num(s string, def int64) int64 {
	if s == "" {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

func keyOf(a map[string]string) Key {
	k := Key{GroupID: a["g"], Partition: int32(num(a["p"], 0))}
	copy(k.TopicID[:], a["t"])
	return k
}

func parseBatches(s string) []Batch {
	var out []Batch
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		var b Batch
		var state, count int64
		if _, err := fmt.Sscanf(strings.NewReplacer("-", " ", ":", " ").Replace(f), "%d %d %d %d", &b.FirstOffset, &b.LastOffset, &state, &count); err != nil {
			panic(fmt.Sprintf("batch %q: %v", f, err))
		}
		b.DeliveryState, b.DeliveryCount = int8(state), int16(count)
		out = append(out, b)
	}
	return out
}

// long: a dispatch switch over the golden commands.
func (h *harness) run(command string) string {
	fields := strings.Fields(command)
	a := args(fields[1:])
	h.next++
	w := h.next
	var value string
	switch fields[0] {
	case "write":
		h.shard.Write(h.nowMs, w, keyOf(a), WriteRequest{StateEpoch: int32(num(a["state"], 0)), LeaderEpoch: int32(num(a["leader"], 0)),
			StartOffset: num(a["spso"], -1), Batches: parseBatches(a["batches"])})
	case "read":
		h.shard.Read(w, keyOf(a), int32(num(a["leader"], 0)))
	case "init":
		h.shard.Initialize(h.nowMs, w, keyOf(a), int32(num(a["state"], 0)), num(a["spso"], -1))
	case "delete":
		h.shard.Delete(w, keyOf(a))
	case "delete-topics":
		ids := map[[16]byte]bool{}
		for _, name := range strings.Split(fields[1], ",") {
			var id [16]byte
			copy(id[:], name)
			ids[id] = true
		}
		value = fmt.Sprintf("deleted %d", h.shard.DeleteTopics(ids))
	case "summary":
		sum, ok := h.shard.ReadSummary(keyOf(a))
		return fmt.Sprintf("%+v found=%v", sum, ok)
	case "replay":
		return h.replay(h.log)
	case "compact":
		return h.replay(compact(h.log))
	case "advance":
		h.nowMs += num(fields[1], 0)
		return fmt.Sprintf("now=%d", h.nowMs)
	default:
		return "unknown command " + fields[0]
	}
	records := h.shard.TakeRecords()
	h.log = append(h.log, records...)
	var b strings.Builder
	if value != "" {
		b.WriteString(value + "\n")
	}
	for _, r := range records {
		typ, _, err := decodeKey(r.Key)
		switch {
		case err != nil:
			fmt.Fprintf(&b, "record: %v\n", err)
		case r.Value == nil:
			fmt.Fprintf(&b, "record: tombstone type=%d\n", typ)
		case typ == typeSnapshot:
			fmt.Fprintf(&b, "record: snapshot %d bytes\n", len(r.Value))
		default:
			fmt.Fprintf(&b, "record: update %d bytes\n", len(r.Value))
		}
	}
	for _, r := range h.shard.Durable() {
		if r.Waiter != w {
			fmt.Fprintf(&b, "reply for waiter %d, want %d\n", r.Waiter, w)
		}
		switch {
		case r.Err != nil:
			fmt.Fprintf(&b, "error: %v\n", r.Err)
		case r.Value != nil:
			value = fmt.Sprintf("%+v", r.Value)
			fmt.Fprintf(&b, "reply: %s\n", value)
		default:
			b.WriteString("reply: ok\n")
		}
	}
	b.WriteString(h.shard.String())
	return strings.TrimRight(b.String(), "\n")
}

// replay rebuilds a shard from log and compares it with the live one.
func (h *harness) replay(log []Record) string {
	fresh := NewShard(h.cfg)
	for _, r := range log {
		if err := fresh.Load(r.Key, r.Value); err != nil {
			return "load: " + err.Error()
		}
	}
	same := "matches the live shard"
	if stateOnly(fresh.String()) != stateOnly(h.shard.String()) {
		same = "DIFFERS from the live shard:\n" + h.shard.String()
	}
	return fmt.Sprintf("%d records\n%s%s", len(log), fresh.String(), same)
}

// stateOnly drops the update counts, which compaction rightly changes.
func stateOnly(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, " updates="); i >= 0 {
			j := strings.Index(line[i+1:], " ")
			line = line[:i] + line[i+1+j:]
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// compact is what the log cleaner leaves: the newest record of each key,
// in log order.
func compact(log []Record) []Record {
	newest := map[string]int{}
	for i, r := range log {
		newest[string(r.Key)] = i
	}
	var out []Record
	for i, r := range log {
		if newest[string(r.Key)] == i {
			out = append(out, r)
		}
	}
	return out
}
