package partition

import (
	"context"
	"testing"
	"time"
)

// An idempotent producer's next batch can be queued while its previous one
// waits for its write: Produce calls Queued before that wait and releases
// the producer's lock there, so the network layer can serve the pipelined
// next request and both share a write round. Were the lock held through
// the wait, the second Produce below would never be queued.
func TestPartitionProducePipelinesIdempotentBatches(t *testing.T) {
	f := newFixture(t)
	f.createTopic("pipe", 1, nil, []int32{testNode})
	p := f.partition("pipe", 0)
	second := make(chan error, 1)
	secondQueued := make(chan struct{})
	var secondRes AppendResult
	first, err := p.Produce(context.Background(), f.batch(idem(7, 0, 0, 2)), ProduceOptions{AcksAll: true, Queued: func() {
		go func() {
			var err error
			secondRes, err = p.Produce(context.Background(), f.batch(idem(7, 0, 2, 3)), ProduceOptions{AcksAll: true,
				Queued: func() { close(secondQueued) }})
			second <- err
		}()
		select {
		case <-secondQueued:
		case <-time.After(5 * time.Second):
			t.Error("the producer's next batch was not queued while the first waited for its write")
		}
	}})
	noErr(t, err)
	noErr(t, <-second)
	require(t, first.BaseOffset == 0 && first.LastOffset == 1 && secondRes.BaseOffset == 2 && secondRes.LastOffset == 4,
		"offsets %+v then %+v", first, secondRes)
	require(t, p.Offsets().HighWatermark == 5, "high watermark %d", p.Offsets().HighWatermark)

	// A retry of a batch is answered with its offsets, once durable; a
	// batch out of sequence is still refused.
	dup, err := p.Produce(context.Background(), f.batch(idem(7, 0, 2, 3)), ProduceOptions{})
	noErr(t, err)
	require(t, dup.Duplicate && dup.BaseOffset == 2, "retry answered %+v", dup)
	_, err = p.Produce(context.Background(), f.batch(idem(7, 0, 9, 1)), ProduceOptions{})
	requireErrorIs(t, err, ErrOutOfOrderSequence)
}
