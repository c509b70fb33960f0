package api

// Helpers shared by the admin handlers (Metadata, CreateTopics,
// DeleteTopics, the config APIs, CreatePartitions, DescribeCluster).

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/kraft"
	"github.com/sluicelog/sluice/internal/metadata"
)

// adminDefaultTimeout bounds a controller-bound request that asks for no
// timeout (timeout_ms <= 0). Old Kafka read 0 as "create and do not wait
// for the result"; Submit always waits for the outcome, so a request
// without a usable timeout gets this one instead of failing at once.
const adminDefaultTimeout = 30 * time.Second

// adminContext is ctx with the request's timeout_ms as its deadline.
func adminContext(ctx context.Context, timeoutMs int32) (context.Context, context.CancelFunc) {
	d := adminDefaultTimeout
	if timeoutMs > 0 {
		d = time.Duration(timeoutMs) * time.Millisecond
	}
	return context.WithTimeout(ctx, d)
}

// adminSubmit runs cmd on the controller and returns its typed response.
func adminSubmit[T any](ctx context.Context, b *Broker, cmd kraft.Command) (T, error) {
	var zero T
	out, err := b.Control.Submit(ctx, cmd)
	if err != nil {
		return zero, fmt.Errorf("controller %T: %w", cmd, err)
	}
	resp, ok := out.(T)
	if !ok {
		return zero, fmt.Errorf("controller %T answered %T, want %T", cmd, out, zero)
	}
	return resp, nil
}

// adminInvalidRequest is a request that contradicts itself or asks for
// something this broker cannot do; it maps to INVALID_REQUEST.
func adminInvalidRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", controller.ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// adminListenerName is the listener clients are pointed at when the
// request did not come through a listener (tests, internal callers).
const adminListenerName = "PLAINTEXT"

// requestListener is the name of the listener a request came in on: as in
// Kafka, Metadata and FindCoordinator point a client at the same listener
// on every broker, so a client of the SASL_SSL listener is never sent to
// a PLAINTEXT port.
func requestListener(ctx context.Context) string {
	if s := auth.SessionFromContext(ctx); s != nil && s.Listener != "" {
		return s.Listener
	}
	return adminListenerName
}

// adminEndpoint is the address clients reach broker bi on: its listener
// of that name, else its first one (a broker with a single listener under
// another name must still be reachable).
func adminEndpoint(bi *metadata.BrokerImage, listener string) (host string, port int32, ok bool) {
	for _, l := range bi.Listeners {
		if l.Name == listener {
			return l.Host, int32(l.Port), true
		}
	}
	if len(bi.Listeners) == 0 {
		return "", 0, false
	}
	return bi.Listeners[0].Host, int32(bi.Listeners[0].Port), true
}

// adminBrokerAlive: registered, unfenced and reachable. Only such brokers
// are listed to clients and count as leaders.
func adminBrokerAlive(img *metadata.Image, id int32) bool {
	bi, ok := img.Broker(id)
	if !ok || bi.Fenced {
		return false
	}
	return len(bi.Listeners) > 0
}

// adminAliveBrokers lists the live brokers, by id.
func adminAliveBrokers(img *metadata.Image) []*metadata.BrokerImage {
	var out []*metadata.BrokerImage
	for _, bi := range img.Brokers() {
		if adminBrokerAlive(img, bi.ID) {
			out = append(out, bi)
		}
	}
	return out
}

// adminControllerID is the controller id Metadata and DescribeCluster
// report. Clients send controller-bound requests there, so it must be a
// broker they can reach: the active controller when it is also a live
// broker, else this broker, which forwards them (KIP-590; Kafka answers a
// random live broker).
func adminControllerID(b *Broker, img *metadata.Image) int32 {
	if id := b.Control.Leader(); id >= 0 && adminBrokerAlive(img, id) {
		return id
	}
	return b.NodeID
}

// adminRack is a broker's rack as the responses carry it: null when unset.
func adminRack(bi *metadata.BrokerImage) *string {
	if bi.Rack == "" {
		return nil
	}
	rack := bi.Rack
	return &rack
}

// adminMetadataTopic is Kafka's own metadata log; it is never a topic
// clients may create.
const adminMetadataTopic = "__cluster_metadata"

// adminIsInternalTopic reports the topics Kafka flags is_internal: those
// its coordinators own.
func adminIsInternalTopic(name string) bool {
	return name == "__consumer_offsets" || name == "__transaction_state"
}

// adminCheckBrokerResource accepts a broker config resource name that is
// "" (the cluster-wide default) or this broker's id, as Kafka's brokers
// do: a per-broker config for another broker belongs on that broker.
func adminCheckBrokerResource(b *Broker, name string) error {
	if name == "" {
		return nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return adminInvalidRequest("broker id must be an integer, but it is %q", name)
	}
	if int32(id) != b.NodeID {
		return adminInvalidRequest("unexpected broker id, expected %d or an empty string, but received %s", b.NodeID, name)
	}
	return nil
}
