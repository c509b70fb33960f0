package controller

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/golden"
	"github.com/sluicelog/sluice/internal/metadata"
)

// Golden-file tests: each testdata/*.txt file is a story told to one
// controller in a tiny command language, each command followed by the
// records it emitted (replayed at once, as the quorum would) and its
// response. Regenerate after an intended change with
//
//	go test -run TestControllerGolden ./internal/controller/ -rewrite
//
// and review the diff: it is the behaviour change.
//
// File format: blocks separated by blank lines; a block is optional '#'
// comment lines, one command, a "----" line and the expected output (no
// blank lines in it).
//
// Commands (time is nowMs, starting at 0):
//
//	config key=value...               a new controller and empty image (Config fields:
//	                                  partitions, rf, session, unclean, block, imbalance)
//	register ID [rack=R] [inc=N] [prev=M]
//	                                  RegisterBroker (incarnation N, default 1; previous
//	                                  incarnation M on its log dir, default none)
//	heartbeat ID [fence] [shutdown] [behind] [epoch=E]
//	                                  BrokerHeartbeat with the registered epoch (or E), caught
//	                                  up unless behind
//	brokers ID[:RACK]...              register and unfence each
//	advance MS                        move nowMs
//	fence-expired                     FenceExpiredBrokers
//	create NAME [p=N] [rf=N] [assign=1,2;2,3] [validate] [KEY=VALUE...]
//	delete NAME...
//	add-partitions NAME COUNT
//	alter-isr TOPIC/P ISR [as=ID] [stale] [broker-epoch=E]
//	                                  AlterPartition with the current epochs (stale: one behind)
//	elect preferred|unclean [TOPIC/P...]
//	rebalance                         RebalanceLeaders (the auto.leader.rebalance.enable check)
//	set TOPIC|broker:NAME KEY=VALUE...   IncrementalAlterConfigs SET (VALUE "-" deletes)
//	partitions                        every partition's state
//	brokers-state                     every broker's state

var goldenRewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/ with the current output")

func TestControllerGolden(t *testing.T) {
	golden.RunDir(t, "testdata", *goldenRewrite, func(t *testing.T) func(string) string {
		g := &goldenController{cl: newCluster(t, DefaultConfig())}
		return func(command string) string { return strings.Join(g.run(command), "\n") }
	})
}

// goldenController runs commands against a cluster and prints what happened.
type goldenController struct {
	cl  *cluster
	out []string
}

func (g *goldenController) printf(format string, args ...any) {
	g.out = append(g.out, fmt.Sprintf(format, args...))
}

// emit replays records and prints them.
func (g *goldenController) emit(records []metadata.Record) {
	for _, r := range records {
		g.printf("%s", formatRecord(r))
	}
	g.cl.apply(records)
}

func (g *goldenController) result(err error) {
	if err != nil {
		g.printf("error: %v", err)
	}
}

// run executes one command and returns its output lines.
//
// long: a dispatch switch, one short case per command.
func (g *goldenController) run(command string) []string {
	g.out = nil
	fields := strings.Fields(command)
	args, opts := splitOptions(fields[1:])
	cl := g.cl
	switch fields[0] {
	case "config":
		cfg := Config{NumPartitions: int32(atoi(opts["partitions"])), DefaultReplicationFactor: int16(atoi(opts["rf"])),
			BrokerSessionTimeoutMs: int64(atoi(opts["session"])), UncleanLeaderElectionEnable: opts["unclean"] == "true",
			ProducerIDBlockSize: int32(atoi(opts["block"])), LeaderImbalancePerBrokerPercentage: DefaultConfig().LeaderImbalancePerBrokerPercentage}
		if v, ok := opts["imbalance"]; ok {
			cfg.LeaderImbalancePerBrokerPercentage = int32(atoi(v))
		}
		g.cl = newCluster(cl.t, cfg)
	case "register":
		inc := byte(1)
		if opts["inc"] != "" {
			inc = byte(atoi(opts["inc"]))
		}
		req := RegisterBrokerRequest{BrokerID: int32(atoi(args[0])), Incarnation: metadata.UUID{inc, byte(atoi(args[0]))}, Rack: opts["rack"]}
		if opts["prev"] != "" {
			req.PreviousIncarnation = metadata.UUID{byte(atoi(opts["prev"])), byte(req.BrokerID)}
		}
		recs, resp := cl.c.RegisterBroker(cl.img, req, cl.nowMs)
		g.emit(recs)
		if g.result(resp.Err); resp.Err == nil {
			cl.epoch[int32(atoi(args[0]))] = resp.BrokerEpoch
			g.printf("epoch %d", resp.BrokerEpoch)
		}
	case "heartbeat":
		id := int32(atoi(args[0]))
		offset := cl.img.Offset()
		if _, behind := opts["behind"]; behind {
			offset = cl.epoch[id] - 1
		}
		_, fence := opts["fence"]
		_, shutdown := opts["shutdown"]
		epoch := cl.epoch[id]
		if opts["epoch"] != "" {
			epoch = int64(atoi(opts["epoch"]))
		}
		recs, resp := cl.c.BrokerHeartbeat(cl.img, BrokerHeartbeatRequest{BrokerID: id, BrokerEpoch: epoch,
			CurrentMetadataOffset: offset, WantFence: fence, WantShutDown: shutdown}, cl.nowMs)
		g.emit(recs)
		if g.result(resp.Err); resp.Err == nil {
			g.printf("caught-up=%t fenced=%t shutdown=%t", resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutDown)
		}
	case "brokers":
		cl.addBrokers(args...)
		g.printBrokers()
	case "advance":
		cl.nowMs += int64(atoi(args[0]))
		g.printf("now %d", cl.nowMs)
	case "fence-expired":
		recs, fenced := cl.c.FenceExpiredBrokers(cl.img, cl.nowMs)
		g.emit(recs)
		g.printf("fenced %v", fenced)
	case "create":
		g.create(args[0], opts)
	case "delete":
		recs, resp := cl.c.DeleteTopics(cl.img, DeleteTopicsRequest{Names: args})
		g.emit(recs)
		for _, r := range resp.Topics {
			g.result(r.Err)
		}
	case "add-partitions":
		recs, resp := cl.c.CreatePartitions(cl.img, CreatePartitionsRequest{Topics: []CreatePartitionsTopic{{Name: args[0], Count: int32(atoi(args[1]))}}})
		g.emit(recs)
		g.result(resp.Topics[0].Err)
	case "alter-isr":
		g.alterISR(args, opts)
	case "elect":
		g.elect(args)
	case "rebalance":
		g.emit(cl.c.RebalanceLeaders(cl.img))
	case "set":
		g.set(args[0], opts)
	case "partitions":
		g.out = append(g.out, strings.Split(strings.TrimRight(formatPartitions(cl.img), "\n"), "\n")...)
	case "brokers-state":
		g.printBrokers()
	default:
		cl.t.Fatalf("unknown command %q", command)
	}
	if len(g.out) == 0 {
		g.printf("ok")
	}
	return g.out
}

func (g *goldenController) printBrokers() {
	for _, b := range g.cl.img.Brokers() {
		g.printf("broker %d epoch=%d rack=%q fenced=%t", b.ID, b.Epoch, b.Rack, b.Fenced)
	}
}

func (g *goldenController) create(name string, opts map[string]string) {
	topic := CreatableTopic{Name: name, NumPartitions: -1, ReplicationFactor: -1}
	_, validate := opts["validate"]
	for k, v := range opts {
		switch k {
		case "p":
			topic.NumPartitions = int32(atoi(v))
		case "rf":
			topic.ReplicationFactor = int16(atoi(v))
		case "assign":
			for i, part := range strings.Split(v, ";") {
				topic.Assignments = append(topic.Assignments, ReplicaAssignment{int32(i), parseIDs(part)})
			}
		case "validate":
		default:
			topic.Configs = append(topic.Configs, ConfigEntry{k, v})
		}
	}
	sortEntries(topic.Configs)
	recs, resp := g.cl.c.CreateTopics(g.cl.img, CreateTopicsRequest{Topics: []CreatableTopic{topic}, ValidateOnly: validate})
	g.emit(recs)
	res := resp.Topics[0]
	if g.result(res.Err); res.Err == nil {
		g.printf("created %s id=%s partitions=%d rf=%d", res.Name, shortID(res.TopicID), res.NumPartitions, res.ReplicationFactor)
	}
}

func (g *goldenController) alterISR(args []string, opts map[string]string) {
	topicName, pText, _ := strings.Cut(args[0], "/")
	t, _ := g.cl.img.Topic(topicName)
	pid := int32(atoi(pText))
	p := t.Partitions[pid]
	broker := p.Leader
	if opts["as"] != "" {
		broker = int32(atoi(opts["as"]))
	}
	item := AlterPartitionItem{TopicID: t.ID, Partition: pid, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: parseIDs(args[1])}
	if _, stale := opts["stale"]; stale {
		item.PartitionEpoch--
	}
	brokerEpoch := g.cl.epoch[broker]
	if opts["broker-epoch"] != "" {
		brokerEpoch = int64(atoi(opts["broker-epoch"]))
	}
	recs, resp := g.cl.c.AlterPartition(g.cl.img, AlterPartitionRequest{BrokerID: broker, BrokerEpoch: brokerEpoch, Partitions: []AlterPartitionItem{item}})
	g.emit(recs)
	if g.result(resp.Err); resp.Err != nil {
		return
	}
	r := resp.Partitions[0]
	if g.result(r.Err); r.Err == nil {
		g.printf("leader=%d isr=%v epochs=%d/%d", r.Leader, r.ISR, r.LeaderEpoch, r.PartitionEpoch)
	}
}

func (g *goldenController) elect(args []string) {
	req := ElectLeadersRequest{Type: ElectPreferred}
	if args[0] == "unclean" {
		req.Type = ElectUnclean
	}
	for _, a := range args[1:] {
		topic, p, _ := strings.Cut(a, "/")
		req.Partitions = append(req.Partitions, TopicPartitions{topic, []int32{int32(atoi(p))}})
	}
	recs, resp := g.cl.c.ElectLeaders(g.cl.img, req)
	g.emit(recs)
	for _, r := range resp.Results {
		if r.Err != nil {
			g.printf("%s/%d: error: %v", r.Topic, r.Partition, r.Err)
		} else {
			g.printf("%s/%d: elected", r.Topic, r.Partition)
		}
	}
}

func (g *goldenController) set(target string, opts map[string]string) {
	res := ConfigResource{metadata.ConfigResourceTopic, target}
	if name, ok := strings.CutPrefix(target, "broker:"); ok {
		res = ConfigResource{metadata.ConfigResourceBroker, name}
	}
	var ops []ConfigOp
	for k, v := range opts {
		if v == "-" {
			ops = append(ops, ConfigOp{Name: k, Op: OpDelete})
		} else {
			ops = append(ops, ConfigOp{Name: k, Op: OpSet, Value: v})
		}
	}
	recs, resp := g.cl.c.IncrementalAlterConfigs(g.cl.img, IncrementalAlterConfigsRequest{Resources: []IncrementalAlterConfigsResource{{res, ops}}})
	g.emit(recs)
	g.result(resp.Resources[0].Err)
}

// splitOptions separates positional arguments from key=value options (a
// bare word listed in flags is an option with an empty value).
func splitOptions(fields []string) ([]string, map[string]string) {
	var args []string
	opts := map[string]string{}
	for _, f := range fields {
		if k, v, ok := strings.Cut(f, "="); ok {
			opts[k] = v
		} else if f == "fence" || f == "shutdown" || f == "behind" || f == "stale" || f == "validate" {
			opts[f] = ""
		} else {
			args = append(args, f)
		}
	}
	return args, opts
}

func parseIDs(s string) []int32 {
	var ids []int32
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			ids = append(ids, int32(atoi(f)))
		}
	}
	return ids
}

func atoi(s string) int {
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(fmt.Sprintf("golden: %q is not a number", s))
	}
	return n
}

func sortEntries(entries []ConfigEntry) {
	for i := 1; i < len(entries); i++ {
		for j := i; j > 0 && entries[j].Name < entries[j-1].Name; j-- {
			entries[j], entries[j-1] = entries[j-1], entries[j]
		}
	}
}
