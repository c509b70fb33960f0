package controller

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

// seqIDs hands out topic ids 1, 2, 3, ... (in the low bytes; the high byte
// is fixed so no id starts with '-' in base64).
type seqIDs struct{ n uint64 }

func (s *seqIDs) NewUUID() metadata.UUID {
	s.n++
	var id metadata.UUID
	id[0] = 0x10
	binary.BigEndian.PutUint64(id[8:], s.n)
	return id
}

// cluster drives a Controller the way the quorum driver will: every
// decision's records are replayed through metadata.Delta into the next
// Image before the next decision, so every test also proves the records
// apply.
type cluster struct {
	t     testing.TB
	c     *Controller
	img   *metadata.Image
	nowMs int64
	epoch map[int32]int64 // broker epochs from registration
}

func newCluster(t testing.TB, cfg Config) *cluster {
	return &cluster{t: t, c: New(cfg, &seqIDs{}), img: metadata.EmptyImage(), epoch: map[int32]int64{}}
}

// apply replays records into the next Image, failing the test if any does
// not apply.
func (cl *cluster) apply(records []metadata.Record) {
	cl.t.Helper()
	if len(records) == 0 {
		return
	}
	d := metadata.NewDelta(cl.img)
	for i, r := range records {
		if err := d.Replay(r); err != nil {
			cl.t.Fatalf("record %d (%s) does not replay: %v", i, formatRecord(r), err)
		}
	}
	cl.img = d.Apply(cl.img.Offset() + 1)
}

// addBrokers registers and unfences brokers; rack "" means none. Each
// argument is "id" or "id:rack".
func (cl *cluster) addBrokers(specs ...string) {
	cl.t.Helper()
	for _, spec := range specs {
		idText, rack, _ := strings.Cut(spec, ":")
		var id int32
		if _, err := fmt.Sscan(idText, &id); err != nil {
			cl.t.Fatalf("broker spec %q: %v", spec, err)
		}
		cl.register(id, rack, 1)
		cl.heartbeat(id, false)
	}
}

// register registers broker id with incarnation inc.
func (cl *cluster) register(id int32, rack string, inc byte) RegisterBrokerResponse {
	cl.t.Helper()
	recs, resp := cl.c.RegisterBroker(cl.img, RegisterBrokerRequest{
		BrokerID: id, Incarnation: metadata.UUID{inc, byte(id)}, Rack: rack,
		Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: "localhost", Port: uint16(9092 + id), SecurityProtocol: "PLAINTEXT"}},
	}, cl.nowMs)
	cl.apply(recs)
	if resp.Err == nil {
		cl.epoch[id] = resp.BrokerEpoch
	}
	return resp
}

// heartbeat sends a caught-up heartbeat for broker id at the current time.
func (cl *cluster) heartbeat(id int32, wantFence bool) BrokerHeartbeatResponse {
	cl.t.Helper()
	recs, resp := cl.c.BrokerHeartbeat(cl.img, BrokerHeartbeatRequest{
		BrokerID: id, BrokerEpoch: cl.epoch[id], CurrentMetadataOffset: cl.img.Offset(), WantFence: wantFence,
	}, cl.nowMs)
	if resp.Err != nil {
		cl.t.Fatalf("heartbeat %d: %v", id, resp.Err)
	}
	cl.apply(recs)
	return resp
}

// createTopic creates one topic and fails the test on error.
func (cl *cluster) createTopic(name string, partitions int32, rf int16, configs ...ConfigEntry) *metadata.TopicImage {
	cl.t.Helper()
	recs, resp := cl.c.CreateTopics(cl.img, CreateTopicsRequest{Topics: []CreatableTopic{{
		Name: name, NumPartitions: partitions, ReplicationFactor: rf, Configs: configs,
	}}})
	if err := resp.Topics[0].Err; err != nil {
		cl.t.Fatalf("create %s: %v", name, err)
	}
	cl.apply(recs)
	t, _ := cl.img.Topic(name)
	return t
}

func (cl *cluster) partition(topic string, p int32) *metadata.PartitionImage {
	cl.t.Helper()
	t, ok := cl.img.Topic(topic)
	if !ok || int(p) >= len(t.Partitions) {
		cl.t.Fatalf("no partition %s-%d", topic, p)
	}
	return t.Partitions[p]
}

func requireErr(t testing.TB, err, want error) {
	t.Helper()
	if want == nil && err != nil || want != nil && !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

// formatRecord prints a record on one line for golden files and failures.
func formatRecord(r metadata.Record) string {
	switch r := r.(type) {
	case *metadata.RegisterBroker:
		return fmt.Sprintf("RegisterBroker id=%d epoch=%d rack=%q fenced=%t", r.BrokerID, r.BrokerEpoch, r.Rack, r.Fenced)
	case *metadata.FenceBroker:
		return fmt.Sprintf("FenceBroker id=%d epoch=%d", r.BrokerID, r.BrokerEpoch)
	case *metadata.UnfenceBroker:
		return fmt.Sprintf("UnfenceBroker id=%d epoch=%d", r.BrokerID, r.BrokerEpoch)
	case *metadata.Topic:
		return fmt.Sprintf("Topic %s id=%s", r.Name, shortID(r.ID))
	case *metadata.Partition:
		return fmt.Sprintf("Partition %s/%d replicas=%v isr=%v leader=%d epochs=%d/%d",
			shortID(r.TopicID), r.Partition, r.Replicas, r.ISR, r.Leader, r.LeaderEpoch, r.PartitionEpoch)
	case *metadata.PartitionChange:
		return fmt.Sprintf("PartitionChange %s/%d leader=%s isr=%s",
			shortID(r.TopicID), r.Partition, formatLeader(r.Leader), formatOptional(r.ISR))
	case *metadata.RemoveTopic:
		return fmt.Sprintf("RemoveTopic %s", shortID(r.TopicID))
	case *metadata.Config:
		if r.Delete {
			return fmt.Sprintf("Config %d/%q %s deleted", r.ResourceType, r.ResourceName, r.Name)
		}
		return fmt.Sprintf("Config %d/%q %s=%s", r.ResourceType, r.ResourceName, r.Name, r.Value)
	case *metadata.ProducerIDs:
		return fmt.Sprintf("ProducerIDs broker=%d epoch=%d next=%d", r.BrokerID, r.BrokerEpoch, r.NextProducerID)
	case *metadata.AccessControlEntry:
		return fmt.Sprintf("AccessControlEntry %s", r.Binding)
	case *metadata.RemoveAccessControlEntry:
		return fmt.Sprintf("RemoveAccessControlEntry %x", r.ID[:4])
	}
	return fmt.Sprintf("%T %+v", r, r)
}

// shortID prints a test topic id (seqIDs) as its sequence number.
func shortID(id metadata.UUID) string {
	return fmt.Sprintf("#%d", binary.BigEndian.Uint64(id[8:]))
}

func formatLeader(l int32) string {
	switch l {
	case metadata.NoLeader:
		return "none"
	case metadata.NoLeaderChange:
		return "same"
	}
	return fmt.Sprint(l)
}

func formatOptional(ids []int32) string {
	if ids == nil {
		return "same"
	}
	return fmt.Sprint(ids)
}

// formatPartitions prints every partition's state, for golden files.
func formatPartitions(img *metadata.Image) string {
	var b strings.Builder
	for _, t := range img.Topics() {
		for i, p := range t.Partitions {
			fmt.Fprintf(&b, "  %s-%d replicas=%v isr=%v leader=%s epochs=%d/%d\n",
				t.Name, i, p.Replicas, p.ISR, formatLeader(p.Leader), p.LeaderEpoch, p.PartitionEpoch)
		}
	}
	return b.String()
}

func countBy(ids []int32) map[int32]int {
	m := map[int32]int{}
	for _, id := range ids {
		m[id]++
	}
	return m
}

// spread returns max-min of the counts over the given brokers.
func spread(counts map[int32]int, brokers []int32) int {
	var values []int
	for _, b := range brokers {
		values = append(values, counts[b])
	}
	return slices.Max(values) - slices.Min(values)
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
