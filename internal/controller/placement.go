package controller

import (
	"fmt"
	"slices"
	"sort"

	"github.com/sluicelog/sluice/internal/metadata"
)

// placer spreads new partitions' replicas over the unfenced brokers the way
// Kafka's rack-aware assignment does:
//
//   - The brokers are listed rack by rack in turn (a1, b1, c1, a2, b2, ...),
//     so neighbours in the list sit in different racks.
//   - Partition i of a placement starting at slot s is led by broker
//     (s+i) mod n, so leaders go round-robin.
//   - Its followers are the brokers after the leader at a shift that
//     changes every n partitions, so the same pairs do not always share
//     partitions (a failed broker's load spreads over several others).
//   - A follower whose rack already holds a replica is skipped until every
//     rack holds one.
//
// The starting slot is the number of partitions in the cluster (plus those
// placed earlier in the same decision), not a random draw: leadership keeps
// going round-robin across topics, and the same Image always gives the same
// placement, which the golden tests and the simulator rely on.
type placer struct {
	brokers  []int32 // unfenced, rack-alternated
	rack     map[int32]string
	numRacks int
}

// newPlacer lists img's unfenced brokers for placement. Brokers without a
// rack form one rack of their own (named ""), so a cluster with no racks is
// the rack-unaware case and a mixed one still spreads.
//
// Mixed racks are accepted, not refused: ZooKeeper-era Kafka failed such a
// placement unless told --disable-rack-aware, but KRaft's StripedReplicaPlacer
// treats "no rack" as one more rack, as here. Refusing would make every
// CreateTopics fail during a rolling restart that adds broker.rack, and an
// operator has no flag to pass through a client's CreateTopics anyway.
// Fenced brokers are left out entirely, so a replication factor above the
// unfenced brokers fails with ErrNotEnoughBrokers.
func newPlacer(img *metadata.Image) *placer {
	byRack := map[string][]int32{}
	p := &placer{rack: map[int32]string{}}
	for _, b := range img.Brokers() {
		if !b.Fenced {
			byRack[b.Rack] = append(byRack[b.Rack], b.ID)
			p.rack[b.ID] = b.Rack
		}
	}
	racks := make([]string, 0, len(byRack))
	for r := range byRack {
		racks = append(racks, r)
	}
	sort.Strings(racks)
	p.numRacks = len(racks)
	for i := 0; len(p.brokers) < len(p.rack); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				p.brokers = append(p.brokers, byRack[r][i])
			}
		}
	}
	return p
}

// place returns the replicas of partitions partitions with rf replicas
// each, starting at slot start.
func (p *placer) place(start, partitions, rf int) ([][]int32, error) {
	n := len(p.brokers)
	if rf > n {
		return nil, fmt.Errorf("%w: replication factor %d, but %d broker(s) are unfenced", ErrNotEnoughBrokers, rf, n)
	}
	out := make([][]int32, partitions)
	for i := range out {
		shift := 0
		if n > 1 {
			shift = (start/n + i/n) % (n - 1)
		}
		out[i] = p.replicas((start+i)%n, shift, rf)
	}
	return out, nil
}

// replicas picks one partition's replicas: the leader at index first, then
// followers at the given shift. Two passes over the other n-1 brokers are
// enough: the first may skip brokers whose rack is taken, the second runs
// once every rack holds a replica and takes anyone not yet chosen.
func (p *placer) replicas(first, shift, rf int) []int32 {
	n := len(p.brokers)
	replicas := make([]int32, 1, rf)
	replicas[0] = p.brokers[first]
	usedRacks := []string{p.rack[replicas[0]]}
	for k := 0; len(replicas) < rf && k < 2*(n-1); k++ {
		b := p.brokers[(first+1+(shift+k)%(n-1))%n]
		rack := p.rack[b]
		if slices.Contains(replicas, b) || slices.Contains(usedRacks, rack) && len(usedRacks) < p.numRacks {
			continue
		}
		replicas = append(replicas, b)
		if !slices.Contains(usedRacks, rack) {
			usedRacks = append(usedRacks, rack)
		}
	}
	return replicas
}
