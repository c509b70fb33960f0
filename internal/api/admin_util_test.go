package api

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
)

// newAdminHarness is newHarness with broker 1 kept alive: the controller
// fences a broker whose session (9s) runs out, and a slow run under -race
// must not see its only broker fenced halfway through a test.
func newAdminHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := newHarness(t, cfg)
	adminKeepAlive(t, h, 1)
	return h
}

// adminHeartbeat sends one heartbeat for broker id: fence asks the
// controller to fence it, else to unfence it.
func adminHeartbeat(t *testing.T, h *harness, id int32, fence bool) {
	t.Helper()
	adminBeat(t, h, id, fence)
}

// adminKeepAlive unfences broker id and keeps its session alive until the
// test ends.
func adminKeepAlive(t *testing.T, h *harness, id int32) {
	t.Helper()
	beat := adminBeat(t, h, id, false)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				beat(ctx) // a missed beat is retried on the next tick
				cancel()
			}
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// adminBeat heartbeats once and returns a function sending more of the same.
func adminBeat(t *testing.T, h *harness, id int32, fence bool) func(context.Context) (controller.BrokerHeartbeatResponse, error) {
	t.Helper()
	bi, ok := h.cp.Image().Broker(id)
	if !ok {
		t.Fatalf("broker %d is not registered", id)
	}
	beat := func(ctx context.Context) (controller.BrokerHeartbeatResponse, error) {
		out, err := h.cp.Submit(ctx, kraft.BrokerHeartbeat{Request: controller.BrokerHeartbeatRequest{
			BrokerID: id, BrokerEpoch: bi.Epoch, CurrentMetadataOffset: h.cp.Image().Offset(), WantFence: fence}})
		if err != nil {
			return controller.BrokerHeartbeatResponse{}, err
		}
		return out.(controller.BrokerHeartbeatResponse), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	resp, err := beat(ctx)
	cancel()
	if err != nil || resp.Err != nil || resp.IsFenced != fence {
		t.Fatalf("heartbeat broker %d (fence %v): %v %+v", id, fence, err, resp)
	}
	return beat
}

func adminPtr(s string) *string { return &s }

// adminCreate creates a topic through CreateTopics v7 and fails the test
// unless it succeeds.
func adminCreate(t *testing.T, h *harness, name string, partitions int32, configs ...string) kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	for i := 0; i+1 < len(configs); i += 2 {
		rt.Configs = append(rt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: configs[i], Value: adminPtr(configs[i+1])})
	}
	req.Topics = append(req.Topics, rt)
	resp := h.do(req).(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s: %+v", name, resp.Topics)
	}
	return resp.Topics[0]
}

// adminMetadata asks for topics (nil: all) at version v.
func adminMetadata(t *testing.T, h *harness, v int16, allowAutoCreate bool, topics ...string) *kmsg.MetadataResponse {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = v
	req.AllowAutoTopicCreation = allowAutoCreate
	if topics != nil {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = adminPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	return h.do(req).(*kmsg.MetadataResponse)
}

// adminWantCode fails unless got is want's code.
func adminWantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wantCode int16
	if want != nil {
		wantCode = want.Code
	}
	if got != wantCode {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

// adminRegister registers another broker (fenced until it heartbeats).
func adminRegister(t *testing.T, h *harness, id int32, rack string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := h.cp.Submit(ctx, kraft.RegisterBroker{Request: controller.RegisterBrokerRequest{BrokerID: id,
		Incarnation: metadata.UUID{byte(id), 9}, Rack: rack,
		Listeners: []metadata.Listener{{Name: "PLAINTEXT", Host: "127.0.0.2", Port: uint16(9090 + id), SecurityProtocol: "PLAINTEXT"}}}})
	if err != nil || out.(controller.RegisterBrokerResponse).Err != nil {
		t.Fatalf("register broker %d: %v %+v", id, err, out)
	}
}

func TestAdminContextHonoursTimeout(t *testing.T) {
	for _, c := range []struct {
		timeoutMs int32
		want      time.Duration
	}{{1500, 1500 * time.Millisecond}, {0, adminDefaultTimeout}, {-1, adminDefaultTimeout}} {
		ctx, cancel := adminContext(context.Background(), c.timeoutMs)
		deadline, ok := ctx.Deadline()
		cancel()
		if left := time.Until(deadline); !ok || left > c.want || left < c.want-5*time.Second {
			t.Fatalf("timeout_ms %d: deadline in %v, want about %v", c.timeoutMs, left, c.want)
		}
	}
}
