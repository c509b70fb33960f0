package api

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
)

// serveTCP serves h over a loopback listener, one request at a time per
// connection (so responses stay in order), for tests that drive the
// harness with a real client. Every broker address the client is told
// about leads back here (see electAdmin's dialer).
func (h *harness) serveTCP() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	h.t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); h.serveConn(conn) }()
		}
	}()
	return ln.Addr().String()
}

func (h *harness) serveConn(conn net.Conn) {
	defer conn.Close()
	for {
		var size [4]byte
		if _, err := io.ReadFull(conn, size[:]); err != nil {
			return
		}
		n := binary.BigEndian.Uint32(size[:])
		if n > 1<<20 { // test clients send small requests
			return
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(conn, frame); err != nil {
			return
		}
		out, err := h.server.Serve(context.Background(), conn.RemoteAddr().String(), frame)
		if err != nil {
			return
		}
		if out == nil {
			continue
		}
		_, err = out.WriteTo(conn)
		out.Release()
		if err != nil {
			return
		}
	}
}

// electAdmin is a kadm client of the harness over TCP. The harness
// registers its brokers with made-up addresses, so the dialer sends every
// connection to the one listener.
func electAdmin(t *testing.T, h *harness) *kadm.Client {
	t.Helper()
	addr := h.serveTCP()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.Dialer(func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// electCreate creates a topic whose partitions have the given replicas.
func electCreate(t *testing.T, h *harness, name string, assignment ...[]int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version, req.TimeoutMillis = 7, 10000
	rt := createTopicsTopic(name, -1, -1)
	for i, replicas := range assignment {
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, kmsg.CreateTopicsRequestTopicReplicaAssignment{Partition: int32(i), Replicas: replicas})
	}
	req.Topics = append(req.Topics, rt)
	resp := h.do(req).(*kmsg.CreateTopicsResponse)
	adminWantCode(t, "create "+name, resp.Topics[0].ErrorCode, nil)
}

// electAlterISR has the partition's leader set its ISR, as a leader's
// AlterPartition would.
func electAlterISR(t *testing.T, h *harness, topic string, partition int32, isr ...int32) {
	t.Helper()
	ti, _ := h.cp.Image().Topic(topic)
	p := ti.Partitions[partition]
	leader, _ := h.cp.Image().Broker(p.Leader)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := h.cp.Submit(ctx, kraft.AlterPartition{Request: controller.AlterPartitionRequest{BrokerID: p.Leader, BrokerEpoch: leader.Epoch,
		Partitions: []controller.AlterPartitionItem{{TopicID: ti.ID, Partition: partition, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: isr}}}})
	if err != nil {
		t.Fatal(err)
	}
	if resp := out.(controller.AlterPartitionResponse); resp.Err != nil || resp.Partitions[0].Err != nil {
		t.Fatalf("alter %s-%d ISR to %v: %v %v", topic, partition, isr, resp.Err, resp.Partitions[0].Err)
	}
}

func electLeader(h *harness, topic string, partition int32) int32 {
	p, _ := h.cp.Image().Partition(topic, partition)
	return p.Leader
}

func electWantErr(t *testing.T, rs kadm.ElectLeadersResults, topic string, partition int32, want *kerr.Error) {
	t.Helper()
	res, ok := rs[topic][partition]
	if !ok {
		t.Fatalf("no result for %s-%d in %+v", topic, partition, rs)
	}
	if (want == nil && res.Err != nil) || (want != nil && !errors.Is(res.Err, want)) {
		t.Fatalf("%s-%d: %v (%s), want %v", topic, partition, res.Err, res.ErrMessage, want)
	}
}

// TestElectLeadersWithKadm drives preferred and unclean elections with
// franz-go's admin client, through every outcome the controller has.
func TestElectLeadersWithKadm(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminRegister(t, h, 2, "")
	adminHeartbeat(t, h, 2, false)
	electCreate(t, h, "t", []int32{2, 1}, []int32{1, 2})
	electCreate(t, h, "u", []int32{2, 1})
	electAlterISR(t, h, "u", 0, 2)
	// Broker 2 restarts: t-0 moves to broker 1 and broker 2 comes back
	// outside its ISR. (u-0, whose only ISR member is 2, waits leaderless
	// and gets 2 back as leader when it returns.)
	adminHeartbeat(t, h, 2, true)
	adminHeartbeat(t, h, 2, false)
	if electLeader(h, "t", 0) != 1 || electLeader(h, "u", 0) != 2 {
		t.Fatalf("after broker 2's restart: t-0 led by %d, u-0 by %d", electLeader(h, "t", 0), electLeader(h, "u", 0))
	}
	adm := electAdmin(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	named := kadm.TopicsSet{}
	named.Add("t", 0, 1)
	named.Add("nope", 0)
	rs, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, named)
	if err != nil {
		t.Fatal(err)
	}
	electWantErr(t, rs, "t", 0, kerr.PreferredLeaderNotAvailable)
	electWantErr(t, rs, "t", 1, kerr.ElectionNotNeeded)
	electWantErr(t, rs, "nope", 0, kerr.UnknownTopicOrPartition)

	// Back in t-0's ISR, broker 2 can lead again. With no topics named,
	// only the partitions that needed an election are listed.
	electAlterISR(t, h, "t", 0, 1, 2)
	rs, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	if err != nil {
		t.Fatal(err)
	}
	electWantErr(t, rs, "t", 0, nil)
	if len(rs) != 1 || len(rs["t"]) != 1 {
		t.Errorf("partitions already led by their preferred replica are listed: %+v", rs)
	}
	if electLeader(h, "t", 0) != 2 {
		t.Fatalf("t-0 led by %d after the preferred election", electLeader(h, "t", 0))
	}

	// Unclean: with broker 2 fenced, u-0 (ISR [2]) is leaderless and only
	// broker 1, outside its ISR, is alive to lead it.
	adminHeartbeat(t, h, 2, true)
	if electLeader(h, "u", 0) != -1 {
		t.Fatalf("u-0 led by %d with its whole ISR fenced", electLeader(h, "u", 0))
	}
	unclean := kadm.TopicsSet{}
	unclean.Add("u", 0)
	unclean.Add("t", 1)
	rs, err = adm.ElectLeaders(ctx, kadm.ElectLiveReplica, unclean)
	if err != nil {
		t.Fatal(err)
	}
	electWantErr(t, rs, "u", 0, nil)
	electWantErr(t, rs, "t", 1, kerr.ElectionNotNeeded)
	if electLeader(h, "u", 0) != 1 {
		t.Fatalf("u-0 led by %d after the unclean election", electLeader(h, "u", 0))
	}
}

// TestElectLeadersVersions checks v0 (preferred only, no top-level code),
// an unknown election type and an empty (not null) topic list.
func TestElectLeadersVersions(t *testing.T) {
	h := newAdminHarness(t, Config{})
	adminCreate(t, h, "t", 1)
	for v := int16(0); v <= 2; v++ {
		req := kmsg.NewPtrElectLeadersRequest()
		req.Version, req.TimeoutMillis, req.ElectionType = v, 10000, 1 // v0 ignores the type
		req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		resp := h.do(req).(*kmsg.ElectLeadersResponse)
		want := kerr.ElectionNotNeeded // unclean: t-0 has a leader; preferred: it is the preferred one
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("v%d: %+v", v, resp)
		}
		adminWantCode(t, "named partition", resp.Topics[0].Partitions[0].ErrorCode, want)
		adminWantCode(t, "top level", resp.ErrorCode, nil)
	}

	req := kmsg.NewPtrElectLeadersRequest()
	req.Version, req.ElectionType = 2, 7
	req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "t", Partitions: []int32{0}}}
	resp := h.do(req).(*kmsg.ElectLeadersResponse)
	adminWantCode(t, "unknown type, top level", resp.ErrorCode, kerr.InvalidRequest)
	adminWantCode(t, "unknown type, partition", resp.Topics[0].Partitions[0].ErrorCode, kerr.InvalidRequest)

	req.ElectionType, req.Topics = 0, []kmsg.ElectLeadersRequestTopic{}
	resp = h.do(req).(*kmsg.ElectLeadersResponse)
	if resp.ErrorCode != 0 || len(resp.Topics) != 0 {
		t.Fatalf("empty topic list: %+v", resp)
	}
}
