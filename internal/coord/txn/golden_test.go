package txn

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/golden"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files with the current outputs")

// TestTxnGolden runs the stories in testdata/*.txt. Commands (key=value
// arguments; w= names the waiter a reply goes to):
//
//	config max-timeout=ms expiration=ms max-txns=n max-record=bytes
//	init w id timeout [pid epoch] [newpid]     InitProducerId
//	add w id pid epoch tps=topic-partition,...  AddPartitionsToTxn
//	verify id pid epoch tps=...                 the verify_only form
//	end w id pid epoch commit|abort             EndTxn
//	markers [id=...]                            write the queued markers
//	advance ms                                  move time, abort timed-out transactions
//	expire                                      expire idle transactional ids
//	restart                                     replay the records into a new shard
//	force-epoch id epoch                        set an id's epoch (as many bumps would)
//	describe id | list [states=a,b] [pids=1,2] [duration=ms]
//
// After every step the harness appends the records (printed), calls
// Durable (replies printed) and prints the markers queued.
func TestTxnGolden(t *testing.T) {
	golden.RunDir(t, "testdata", *rewrite, func(t *testing.T) func(string) string {
		h := &harness{cfg: Config{MaxTimeoutMs: 60000, ExpirationMs: 100000, MaxTransactions: 100, MaxRecordBytes: 4096}}
		h.shard = NewShard(h.cfg)
		return h.run
	})
}

type harness struct {
	cfg     Config
	shard   *Shard
	nowMs   int64
	log     []Record
	markers []Markers // queued, not yet written
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

func parseTPs(s string) []TopicPartition {
	var out []TopicPartition
	for _, f := range strings.Split(s, ",") {
		if f == "" {
			continue
		}
		i := strings.LastIndexByte(f, '-')
		out = append(out, TopicPartition{Topic: f[:i], Partition: int32(atoi(f[i+1:], 0))})
	}
	return out
}

func (h *harness) producer(a map[string]string) ProducerRequest {
	return ProducerRequest{TransactionalID: a["id"], ProducerID: atoi(a["pid"], -1), ProducerEpoch: int16(atoi(a["epoch"], -1))}
}

// long: a dispatch switch over the golden commands.
func (h *harness) run(command string) string {
	fields := strings.Fields(command)
	a := args(fields[1:])
	w := Waiter(atoi(a["w"], 0))
	s := h.shard
	var out strings.Builder
	switch fields[0] {
	case "config":
		h.cfg.MaxTimeoutMs = int32(atoi(a["max-timeout"], int64(h.cfg.MaxTimeoutMs)))
		h.cfg.ExpirationMs = atoi(a["expiration"], h.cfg.ExpirationMs)
		h.cfg.MaxTransactions = int(atoi(a["max-txns"], int64(h.cfg.MaxTransactions)))
		h.cfg.MaxRecordBytes = int(atoi(a["max-record"], int64(h.cfg.MaxRecordBytes)))
		s.cfg = h.cfg
		return "ok"
	case "init":
		req := InitRequest{TransactionalID: a["id"], TimeoutMs: int32(atoi(a["timeout"], 10000)),
			ProducerID: atoi(a["pid"], -1), ProducerEpoch: int16(atoi(a["epoch"], -1)), NewProducerID: atoi(a["newpid"], -1)}
		s.InitProducerID(h.nowMs, w, req)
	case "add":
		s.AddPartitions(h.nowMs, w, h.producer(a), parseTPs(a["tps"]))
	case "verify":
		tps := parseTPs(a["tps"])
		errs, err := s.VerifyPartitions(h.producer(a), tps)
		if err != nil {
			return "error: " + err.Error()
		}
		for i, tp := range tps {
			fmt.Fprintf(&out, "%s-%d: %s\n", tp.Topic, tp.Partition, errText(errs[i]))
		}
		return strings.TrimSpace(out.String())
	case "end":
		s.EndTxn(h.nowMs, w, h.producer(a), len(fields) > 1 && fields[len(fields)-1] == "commit")
	case "markers":
		var keep []Markers
		for _, m := range h.markers {
			if a["id"] != "" && a["id"] != m.TransactionalID {
				keep = append(keep, m)
				continue
			}
			s.MarkersWritten(h.nowMs, m)
		}
		h.markers = keep
	case "advance":
		h.nowMs += atoi(fields[1], 0)
		s.AbortTimedOut(h.nowMs)
	case "expire":
		s.ExpireTransactionalIDs(h.nowMs)
	case "restart":
		h.shard = NewShard(h.cfg)
		h.markers = nil
		for _, r := range h.log {
			if err := h.shard.Load(r.Key, r.Value); err != nil {
				return "load error: " + err.Error()
			}
		}
		h.shard.Loaded()
		s = h.shard
	case "force-epoch":
		// Test only: jump a producer to an epoch, as 32766 bumps would.
		s.txns[a["id"]].ProducerEpoch = int16(atoi(a["epoch"], 0))
		return "ok"
	case "describe":
		m, ok := s.Describe(a["id"])
		if !ok {
			return "not found"
		}
		return describe(&m)
	case "list":
		f := ListFilter{MinDurationMs: atoi(a["duration"], -1)}
		for _, n := range strings.Split(a["states"], ",") {
			if st, ok := ParseState(n); ok {
				f.States = append(f.States, st)
			}
		}
		for _, p := range strings.Split(a["pids"], ",") {
			if p != "" {
				f.ProducerIDs = append(f.ProducerIDs, atoi(p, 0))
			}
		}
		for _, l := range s.List(h.nowMs, f) {
			fmt.Fprintf(&out, "%s pid=%d %s\n", l.TransactionalID, l.ProducerID, l.State)
		}
		return strings.TrimSpace(out.String())
	default:
		return "unknown command " + fields[0]
	}
	h.settle(&out)
	return strings.TrimSpace(out.String())
}

// settle appends the records, makes them durable and prints the outcome.
func (h *harness) settle(out *strings.Builder) {
	records := h.shard.TakeRecords()
	for _, r := range records {
		fmt.Fprintf(out, "record: %s\n", recordText(r))
	}
	h.log = append(h.log, records...)
	for _, r := range h.shard.Durable() {
		fmt.Fprintf(out, "w%d: ", r.Waiter)
		if v, ok := r.Value.(InitResult); ok {
			fmt.Fprintf(out, "pid=%d epoch=%d", v.ProducerID, v.ProducerEpoch)
		}
		if r.Err != nil || r.Value == nil {
			out.WriteString(errText(r.Err))
		}
		out.WriteString("\n")
	}
	for _, m := range h.shard.TakeMarkers() {
		fmt.Fprintf(out, "markers: %s commit=%v pid=%d epoch=%d %v\n", m.TransactionalID, m.Commit, m.ProducerID, m.ProducerEpoch, tpsText(m.Partitions))
		h.markers = append(h.markers, m)
	}
}

func errText(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrProducerIDNeeded):
		return "error: needs a producer id"
	default:
		return "error: " + err.Error()
	}
}

func tpsText(tps []TopicPartition) string {
	parts := make([]string, len(tps))
	for i, tp := range tps {
		parts[i] = fmt.Sprintf("%s-%d", tp.Topic, tp.Partition)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// recordText decodes a record the way the shard will read it back, so
// the golden file also checks the encoding round-trips.
func recordText(r Record) string {
	id, err := decodeKey(r.Key)
	if err != nil {
		return "bad key: " + err.Error()
	}
	if r.Value == nil {
		return "tombstone " + id
	}
	m, err := decodeValue(r.Value)
	if err != nil {
		return "bad value: " + err.Error()
	}
	m.TransactionalID = id
	return describe(m)
}

func describe(m *Metadata) string {
	return fmt.Sprintf("%s pid=%d epoch=%d %s timeout=%d parts=%s start=%d update=%d",
		m.TransactionalID, m.ProducerID, m.ProducerEpoch, m.State, m.TimeoutMs, tpsText(m.Partitions), m.StartTimestampMs, m.LastUpdateTimestampMs)
}
