package console

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluicelog/sluice/internal/clock"
)

// runSampler reads the cluster's throughput and every group's lag on two
// tickers until ctx ends. A failed read is logged at debug level and
// skipped: the charts show a gap, the pages still work.
func (c *Console) runSampler(ctx context.Context) {
	defer close(c.done)
	throughput := c.clock.NewTicker(c.opts.ThroughputInterval)
	defer throughput.Stop()
	lag := c.clock.NewTicker(c.opts.LagInterval)
	defer lag.Stop()
	c.sampleThroughput(ctx)
	c.sampleLag(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-throughput.C():
			c.sampleThroughput(ctx)
		case <-lag.C():
			c.sampleLag(ctx)
		}
	}
}

// sampleTimeout bounds one sample's requests, below the shortest interval
// a test would set, so samples never pile up.
func (c *Console) sampleTimeout() time.Duration {
	return min(c.opts.RequestTimeout, c.opts.ThroughputInterval, c.opts.LagInterval)
}

func (c *Console) sampleThroughput(ctx context.Context) {
	// Fresh metadata (see requestContext), so a new topic's baseline is
	// taken at the first sample after it is created.
	ctx, cancel := context.WithTimeout(kadm.WithAuthorizedOps(ctx), c.sampleTimeout())
	defer cancel()
	totals, err := c.readTopicTotals(ctx)
	if err != nil {
		c.log.Debug("console: throughput sample", "err", err)
		return
	}
	c.samples.addThroughput(clock.UnixMs(c.clock), totals)
}

// readTopicTotals sums, per topic, the high watermarks (records ever
// appended, since offsets are dense) and the partition sizes. A
// partition's size is its largest replica's, so replication does not
// multiply the figure. Two requests per broker, whatever the number of
// partitions.
func (c *Console) readTopicTotals(ctx context.Context) (map[string]topicTotals, error) {
	ends, err := c.admin.ListEndOffsets(ctx)
	if err != nil {
		return nil, err
	}
	dirs, err := c.admin.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return nil, err
	}
	totals := map[string]topicTotals{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil || o.Partition < 0 {
			return
		}
		t := totals[o.Topic]
		t.records += o.Offset
		totals[o.Topic] = t
	})
	for topic, sizes := range partitionSizes(dirs) {
		t, ok := totals[topic]
		if !ok {
			continue
		}
		for _, size := range sizes {
			t.bytes += size
		}
		totals[topic] = t
	}
	return totals, nil
}

// partitionSizes is each partition's largest replica size, by topic.
func partitionSizes(dirs kadm.DescribedAllLogDirs) map[string]map[int32]int64 {
	sizes := map[string]map[int32]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		if d.Err != nil {
			return
		}
		for topic, parts := range d.Topics {
			if sizes[topic] == nil {
				sizes[topic] = map[int32]int64{}
			}
			for p, detail := range parts {
				sizes[topic][p] = max(sizes[topic][p], detail.Size)
			}
		}
	})
	return sizes
}

func (c *Console) sampleLag(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.sampleTimeout())
	defer cancel()
	listed, err := c.admin.ListGroups(ctx)
	if err != nil {
		c.log.Debug("console: lag sample: list groups", "err", err)
		return
	}
	names := listed.Groups()
	if len(names) > maxSampledGroups {
		names = names[:maxSampledGroups]
	}
	groups := map[string]groupTotals{}
	if len(names) > 0 {
		lags, err := c.admin.Lag(ctx, names...)
		if err != nil {
			c.log.Debug("console: lag sample", "err", err)
			return
		}
		for name, l := range lags {
			if l.Error() != nil {
				continue
			}
			groups[name] = totalsOf(l.Lag)
		}
	}
	c.samples.addLag(clock.UnixMs(c.clock), groups)
}

func totalsOf(lag kadm.GroupLag) groupTotals {
	var g groupTotals
	for _, parts := range lag {
		for _, l := range parts {
			if l.Err != nil || l.Commit.At < 0 {
				continue
			}
			g.committed += l.Commit.At
			if l.Lag > 0 {
				g.lag += l.Lag
			}
		}
	}
	return g
}
