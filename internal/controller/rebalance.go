package controller

import "github.com/sluicelog/sluice/internal/metadata"

// RebalanceLeaders is auto.leader.rebalance.enable's periodic check: it
// moves leadership back to preferred replicas (each partition's first
// replica) on the brokers where too much of it has drifted away.
//
// Leadership drifts whenever a broker dies or restarts: its partitions
// move to other ISR members and stay there after it returns, so one broker
// ends up leading most of the cluster. Placement made the preferred
// replicas round-robin, so handing leadership back restores the spread.
//
// As in Kafka, the decision is per broker: its imbalance ratio is the
// share of the partitions it is preferred for that someone else leads (or
// nobody does). When that share is above leader.imbalance.per.broker.percentage,
// each of those partitions whose preferred replica is live and in the ISR
// gets it as leader; the others are left alone (a broker still catching
// up must not lead before it has the committed records). A broker at or
// under the threshold is left alone entirely, so a few stray leaderships
// do not cause a stream of elections, each of which makes clients refresh
// metadata.
//
// At most maxPartitionsPerRequest partitions move per call, so the
// records fit one metadata batch; the rest move on the next check.
func (c *Controller) RebalanceLeaders(img *metadata.Image) []metadata.Record {
	preferred := map[int32]int{}  // partitions each broker is preferred for
	imbalanced := map[int32]int{} // of those, the ones it does not lead
	for _, t := range img.Topics() {
		for _, p := range t.Partitions {
			if len(p.Replicas) == 0 {
				continue
			}
			first := p.Replicas[0]
			preferred[first]++
			if p.Leader != first {
				imbalanced[first]++
			}
		}
	}
	pct := int64(c.cfg.LeaderImbalancePerBrokerPercentage)
	overThreshold := func(id int32) bool {
		// imbalanced/preferred > pct/100, in integers.
		return int64(imbalanced[id])*100 > pct*int64(preferred[id])
	}
	alive := aliveIn(img, nil)
	var records []metadata.Record
	for _, t := range img.Topics() {
		for id, p := range t.Partitions {
			if len(records) >= maxPartitionsPerRequest {
				return records
			}
			if len(p.Replicas) == 0 || p.Leader == p.Replicas[0] || !overThreshold(p.Replicas[0]) {
				continue
			}
			// electOne's refusals (not live, not in the ISR) are the
			// partitions to leave for a later check.
			if rec, err := electOne(t.ID, int32(id), p, ElectPreferred, alive); err == nil {
				records = appendChange(records, rec)
			}
		}
	}
	return records
}
