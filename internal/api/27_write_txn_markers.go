package api

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/partition"
)

// WriteTxnMarkers v0–1: a transaction coordinator asks this broker, as the
// leader of a transaction's partitions, to append the COMMIT or ABORT
// marker for a producer (partition.Partition.WriteTxnMarker). Each
// partition answers once the ISR has the marker, as a produce with
// acks=all. v2 (KIP-1228's transaction_version) is not served yet.
//
// As in Kafka, it needs CLUSTER_ACTION on the cluster: under an authorizer
// a client without it has every partition refused.
var writeTxnMarkersHandler = handler{key: 27, minVersion: 0, maxVersion: 1, serve: serveWriteTxnMarkers}

// writeTxnMarkersTimeout bounds each marker's wait for the ISR. The
// request has no timeout field; Kafka uses request.timeout.ms (30 s by
// default), after which the coordinator retries the marker.
const writeTxnMarkersTimeout = 30 * time.Second

// writeTxnMarkersMaxConcurrent bounds the markers one request appends at
// once: each waits for replication, so they go side by side.
const writeTxnMarkersMaxConcurrent = 16

// markerWrite is one partition of one marker.
type markerWrite struct {
	topic     string
	partition int32
	marker    partition.TxnMarker
	out       *kmsg.WriteTxnMarkersResponseMarkerTopicPartition
}

func serveWriteTxnMarkers(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	var writes []*markerWrite
	// Inter-broker: CLUSTER_ACTION, else every partition is refused.
	denied := b.authz(r).cluster(auth.OpClusterAction)
	resp.Markers = make([]kmsg.WriteTxnMarkersResponseMarker, len(req.Markers))
	for i, m := range req.Markers {
		rm := &resp.Markers[i]
		rm.Default()
		rm.ProducerID = m.ProducerID
		rm.Topics = make([]kmsg.WriteTxnMarkersResponseMarkerTopic, len(m.Topics))
		for j, t := range m.Topics {
			rt := &rm.Topics[j]
			rt.Default()
			rt.Topic = t.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(t.Partitions))
			for k, id := range t.Partitions {
				out := &rt.Partitions[k]
				out.Default()
				out.Partition = id
				if denied != nil {
					out.ErrorCode = errorCode(denied)
					continue
				}
				writes = append(writes, &markerWrite{topic: t.Topic, partition: id, out: out, marker: partition.TxnMarker{
					ProducerID: m.ProducerID, ProducerEpoch: m.ProducerEpoch, CoordinatorEpoch: m.CoordinatorEpoch, Commit: m.Committed}})
			}
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, writeTxnMarkersTimeout)
	defer cancel()
	next := make(chan *markerWrite, len(writes))
	for _, w := range writes {
		next <- w
	}
	close(next)
	var wg sync.WaitGroup
	for range min(len(writes), writeTxnMarkersMaxConcurrent) {
		wg.Go(func() {
			for w := range next {
				w.out.ErrorCode = errorCode(writeTxnMarkerGuarded(waitCtx, b, w))
			}
		})
	}
	wg.Wait()
	return resp, nil
}

// writeTxnMarkerGuarded is writeTxnMarker on a goroutine of its own, and
// so outside the connection's panic recovery: a panic fails this marker's
// partition (logged with its stack) rather than taking the broker down.
func writeTxnMarkerGuarded(ctx context.Context, b *Broker, w *markerWrite) (err error) {
	defer func() {
		if r := recover(); r != nil {
			b.Logger.Error("writing a transaction marker panicked", "topic", w.topic, "partition", w.partition,
				"producerID", w.marker.ProducerID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("transaction marker for %s-%d: panic: %v", w.topic, w.partition, r)
		}
	}()
	return writeTxnMarker(ctx, b, w)
}

func writeTxnMarker(ctx context.Context, b *Broker, w *markerWrite) error {
	p, err := b.Partitions.Partition(w.topic, w.partition)
	if err != nil {
		return err
	}
	res, err := p.WriteTxnMarker(ctx, w.marker)
	if err != nil {
		return err
	}
	if b.TxnMarkerListener != nil {
		// The group coordinator applies a transaction's offset commits
		// once its marker is in __consumer_offsets. An ignored marker is
		// told too: it is the coordinator's retry of one written before
		// (whose wait for the ISR timed out), and carries the same
		// outcome.
		b.TxnMarkerListener.TxnMarkerWritten(w.topic, w.partition, w.marker.ProducerID, w.marker.Commit, res.Offset)
	}
	return nil
}
