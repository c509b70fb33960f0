package api

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/partition"
	"github.com/sluicelog/sluice/internal/vfs"
	"github.com/sluicelog/sluice/internal/wire"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// harness is one broker (node 1, broker + controller, a quorum of one) on
// the real filesystem under t.TempDir(), without a network server: requests
// go through Server.Serve as frames.
type harness struct {
	t      testing.TB
	broker *Broker
	server *Server
	cp     *kraft.ControlPlane
	logs   *log.Manager
	corrID int32
}

// counterIDs hands out producer ids 1000, 1001, ...
type counterIDs struct{ next atomic.Int64 }

func (c *counterIDs) NextProducerID(context.Context) (int64, error) {
	return 1000 + c.next.Add(1) - 1, nil
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	return newHarnessOn(t, cfg, vfs.OS())
}

// newHarnessOn is newHarness with the logs and partitions on fsys (an
// ErrorFS over vfs.OS(), to fail their writes); the quorum stays on the
// real filesystem.
func newHarnessOn(t testing.TB, cfg Config, fsys vfs.FS) *harness {
	t.Helper()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // the quorum listens on the address itself
	cp, err := kraft.Start(kraft.Options{
		Quorum: kraft.QuorumConfig{NodeID: 1, Roles: []kraft.Role{kraft.RoleBroker, kraft.RoleController},
			Voters: map[int32]string{1: ln.Addr().String()}, MetadataLogDir: filepath.Join(dir, "__cluster_metadata"),
			ControllerListen: ln.Addr().String()},
		FS: vfs.OS(), Logger: quietLogger, TickInterval: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cp.Kill)
	registerAndUnfence(t, cp, 1)
	logs, err := log.OpenManager(log.ManagerOptions{FS: fsys, Dir: dir, Config: log.DefaultConfig(), Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	defaults := func() map[string]string { return map[string]string{} }
	parts, err := partition.NewManager(partition.Options{NodeID: 1, Logs: logs, FS: fsys, Dir: dir,
		Logger: quietLogger, Image: cp.Image, TopicDefaults: defaults})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parts.Close() })
	if cfg.NumPartitions == 0 {
		cfg.NumPartitions = 1
	}
	if cfg.DefaultReplicationFactor == 0 {
		cfg.DefaultReplicationFactor = 1
	}
	b := &Broker{NodeID: 1, ClusterID: "test-cluster", Host: "127.0.0.1", Port: 9092, Config: cfg,
		Control: cp, Partitions: parts, ProducerIDs: &counterIDs{}, Logger: quietLogger, TopicDefaults: defaults}
	return &harness{t: t, broker: b, server: NewServer(b), cp: cp, logs: logs}
}

func registerAndUnfence(t testing.TB, cp *kraft.ControlPlane, id int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := cp.Submit(ctx, kraft.RegisterBroker{Request: controller.RegisterBrokerRequest{BrokerID: id,
		Incarnation: metadata.UUID{byte(id), 7},
		Listeners:   []metadata.Listener{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9092, SecurityProtocol: "PLAINTEXT"}}}})
	if err != nil || resp.(controller.RegisterBrokerResponse).Err != nil {
		t.Fatalf("register broker %d: %v %v", id, err, resp)
	}
	epoch := resp.(controller.RegisterBrokerResponse).BrokerEpoch
	heartbeat := func(ctx context.Context) (any, error) {
		return cp.Submit(ctx, kraft.BrokerHeartbeat{Request: controller.BrokerHeartbeatRequest{BrokerID: id,
			BrokerEpoch: epoch, CurrentMetadataOffset: cp.Image().Offset()}})
	}
	hb, err := heartbeat(ctx)
	if err != nil || hb.(controller.BrokerHeartbeatResponse).Err != nil || hb.(controller.BrokerHeartbeatResponse).IsFenced {
		t.Fatalf("unfence broker %d: %v %+v", id, err, hb)
	}
	// Keep the session alive as the node does, so tests longer than the
	// session timeout (9s) don't see their broker fenced.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				hctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, _ = heartbeat(hctx)
				cancel()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
}

// frame encodes req as a request frame (without the size prefix) at its
// version, with the header version the version calls for.
func (h *harness) frame(req kmsg.Request) []byte {
	h.corrID++
	var b []byte
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(h.corrID))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return req.AppendTo(b)
}

// do sends req through Serve and decodes the response; nil when the
// request got no response.
func (h *harness) do(req kmsg.Request) kmsg.Response {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := h.server.Serve(ctx, "127.0.0.1:1", h.frame(req))
	if err != nil {
		h.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	if out == nil {
		return nil
	}
	defer out.Release()
	var buf writeBuffer
	if _, err := out.WriteTo(&buf); err != nil {
		h.t.Fatal(err)
	}
	return h.decode(req, buf)
}

func (h *harness) decode(req kmsg.Request, frame []byte) kmsg.Response {
	h.t.Helper()
	if len(frame) < 8 || int(binary.BigEndian.Uint32(frame)) != len(frame)-4 {
		h.t.Fatalf("response frame of %d bytes has a bad size prefix", len(frame))
	}
	if got := int32(binary.BigEndian.Uint32(frame[4:])); got != h.corrID {
		h.t.Fatalf("correlation id %d, want %d", got, h.corrID)
	}
	body := frame[8:]
	resp := req.ResponseKind()
	if req.IsFlexible() && req.Key() != 18 {
		body = body[1:] // response header v1: an empty tag section
	}
	if err := resp.ReadFrom(body); err != nil {
		h.t.Fatalf("decode %s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

type writeBuffer []byte

func (w *writeBuffer) Write(p []byte) (int, error) { *w = append(*w, p...); return len(p), nil }

var _ = wire.Frame(nil)
