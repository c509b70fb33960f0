package api

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/kraft"
)

// groupTestConfig is a coordinator small enough for tests: three offsets
// partitions, no initial rebalance delay.
func groupTestConfig() coord.Config {
	return coord.Config{
		OffsetsTopicNumPartitions:     3,
		OffsetsTopicReplicationFactor: 1,
		GroupInitialRebalanceDelayMs:  -1,
	}
}

// newGroupHarness is the harness with a group coordinator running on it,
// refreshed on every metadata change as the node does.
func newGroupHarness(t *testing.T, cfg coord.Config) *harness {
	t.Helper()
	h := newAdminHarness(t, Config{})
	c, err := coord.Start(coord.Options{
		NodeID:     h.broker.NodeID,
		Partitions: h.broker.Partitions,
		Image:      h.cp.Image,
		CreateOffsetsTopic: func(ctx context.Context) error {
			return groupCreateOffsetsTopic(ctx, h.cp, cfg)
		},
		Logger: quietLogger,
		Config: cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			_, changed := h.cp.Watch()
			_ = h.broker.Partitions.Refresh()
			c.Refresh()
			select {
			case <-stop:
				return
			case <-changed:
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait(); c.Stop() })
	h.broker.Groups = c
	return h
}

func groupCreateOffsetsTopic(ctx context.Context, cp *kraft.ControlPlane, cfg coord.Config) error {
	topic := controller.CreatableTopic{Name: coord.OffsetsTopic, NumPartitions: cfg.OffsetsTopicNumPartitions,
		ReplicationFactor: cfg.OffsetsTopicReplicationFactor}
	for k, v := range coord.OffsetsTopicConfigs {
		topic.Configs = append(topic.Configs, controller.ConfigEntry{Name: k, Value: v})
	}
	out, err := cp.Submit(ctx, kraft.CreateTopics{Request: controller.CreateTopicsRequest{Topics: []controller.CreatableTopic{topic}}})
	if err != nil {
		return err
	}
	res := out.(controller.CreateTopicsResponse).Topics[0]
	if res.Err != nil && !errors.Is(res.Err, controller.ErrTopicExists) {
		return res.Err
	}
	return nil
}

// groupCorrelationID numbers the requests of groupDo, which goroutines
// share.
var groupCorrelationID atomic.Int32

// groupDo sends req through Serve and decodes the response. Unlike h.do it
// may be called from several goroutines at once (JoinGroup and SyncGroup
// block until the other members arrive), so it returns errors rather than
// failing the test.
func groupDo(h *harness, req kmsg.Request) (kmsg.Response, error) {
	id, frame := groupFrame(req)
	return groupServe(h, req, id, frame)
}

// groupFrame encodes req as a request frame (without the size prefix) and
// returns it with its correlation id.
func groupFrame(req kmsg.Request) (int32, []byte) {
	id := groupCorrelationID.Add(1)
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(id))
	b = binary.BigEndian.AppendUint16(b, 6)
	b = append(b, "client"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return id, req.AppendTo(b)
}

// groupServe serves frame, a request of req's kind with correlation id id,
// and decodes the response.
func groupServe(h *harness, req kmsg.Request, id int32, frame []byte) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := h.server.Serve(ctx, "127.0.0.1:4242", frame)
	if err != nil {
		return nil, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	defer out.Release()
	var buf writeBuffer
	if _, err := out.WriteTo(&buf); err != nil {
		return nil, err
	}
	if len(buf) < 8 || int32(binary.BigEndian.Uint32(buf[4:])) != id {
		return nil, fmt.Errorf("%s: bad response frame", kmsg.NameForKey(req.Key()))
	}
	body := buf[8:]
	if req.IsFlexible() {
		body = body[1:]
	}
	resp := req.ResponseKind()
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s v%d response: %w", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp, nil
}

// groupMust is groupDo on the test goroutine.
func groupMust[T kmsg.Response](t *testing.T, h *harness, req kmsg.Request) T {
	t.Helper()
	resp, err := groupDo(h, req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.(T)
}

// groupWantCode fails unless code is want (nil: success).
func groupWantCode(t *testing.T, what string, code int16, want *kerr.Error) {
	t.Helper()
	wantCode := int16(0)
	if want != nil {
		wantCode = want.Code
	}
	if code != wantCode {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(code), want)
	}
}

// groupEventually retries f until it returns nil or ten seconds pass:
// coordinators are found and loaded in the background.
func groupEventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// groupWaitCoordinator waits until group's coordinator is found and loaded:
// FindCoordinator answers and a Heartbeat gets past the coordinator checks.
func groupWaitCoordinator(t *testing.T, h *harness, group string) {
	t.Helper()
	groupEventually(t, "find coordinator of "+group, func() error {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version, req.CoordinatorKey = 0, group
		resp, err := groupDo(h, req)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.(*kmsg.FindCoordinatorResponse).ErrorCode); err != nil {
			return err
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.Generation, hb.MemberID = group, 1, "nobody"
		resp, err = groupDo(h, hb)
		if err != nil {
			return err
		}
		switch code := resp.(*kmsg.HeartbeatResponse).ErrorCode; code {
		case kerr.CoordinatorNotAvailable.Code, kerr.NotCoordinator.Code, kerr.CoordinatorLoadInProgress.Code:
			return kerr.ErrorForCode(code)
		}
		return nil
	})
}

// groupCreateTopic creates topic with partitions partitions.
func groupCreateTopic(t *testing.T, h *harness, topic string, partitions int32) {
	t.Helper()
	resp := h.do(createTopicsRequest(4, false, createTopicsTopic(topic, partitions, 1))).(*kmsg.CreateTopicsResponse)
	groupWantCode(t, "create "+topic, resp.Topics[0].ErrorCode, nil)
}

// groupJoinRequest is a consumer's JoinGroup with the range protocol.
func groupJoinRequest(version int16, group, memberID string, metadata []byte) *kmsg.JoinGroupRequest {
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version, req.Group, req.MemberID = version, group, memberID
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
	req.ProtocolType = "consumer"
	req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: metadata}}
	return req
}

func groupSyncRequest(version int16, group string, generation int32, memberID string, assignments map[string]string) *kmsg.SyncGroupRequest {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version, req.Group, req.Generation, req.MemberID = version, group, generation, memberID
	if version >= 5 {
		req.ProtocolType, req.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
	}
	for id, a := range assignments {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	return req
}

func groupHeartbeat(t *testing.T, h *harness, version int16, group string, generation int32, memberID string) int16 {
	t.Helper()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version, req.Group, req.Generation, req.MemberID = version, group, generation, memberID
	return groupMust[*kmsg.HeartbeatResponse](t, h, req).ErrorCode
}

// groupCommitRequest commits offsets of topic's partitions 0, 1, ... with
// the given offsets.
func groupCommitRequest(version int16, group string, generation int32, memberID, topic string, offsets ...int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation, req.MemberID = version, group, generation, memberID
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	for p, o := range offsets {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = int32(p), o, kmsg.StringPtr(fmt.Sprintf("m%d", p))
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// groupCommitCodes is every partition's error code, in response order.
func groupCommitCodes(resp *kmsg.OffsetCommitResponse) []int16 {
	var codes []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			codes = append(codes, p.ErrorCode)
		}
	}
	return codes
}
