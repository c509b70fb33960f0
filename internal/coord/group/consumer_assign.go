package group

import "github.com/sluicelog/sluice/internal/metadata"

// The server-side assignors of group.consumer.assignors. Both are pure
// functions of the members (sorted by id, with their previous targets)
// and the subscribed topics (sorted by name), so every replica of the
// decision is the same.
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// assign computes each member's target (aligned with members).
func assign(assignor string, members []*consumerMember, topics []*metadata.TopicImage) []partitionSet {
	if assignor == AssignorRange {
		return assignRange(members, topics)
	}
	return assignUniform(members, topics)
}

// assignRange gives each topic's subscribers contiguous ranges of its
// partitions, the first ones one more when they do not divide evenly, as
// the classic range assignor (and Kafka's server-side range) do.
func assignRange(members []*consumerMember, topics []*metadata.TopicImage) []partitionSet {
	out := emptyTargets(len(members))
	for _, t := range topics {
		var subs []int
		for i, m := range members {
			if m.subscribes(t.Name) {
				subs = append(subs, i)
			}
		}
		if len(subs) == 0 {
			continue
		}
		n := len(t.Partitions)
		per, extra := n/len(subs), n%len(subs)
		p := 0
		for k, i := range subs {
			count := per
			if k < extra {
				count++
			}
			for range count {
				out[i][partitionKey{t.ID, int32(p)}] = struct{}{}
				p++
			}
		}
	}
	return out
}

// assignUniform balances partitions over the members subscribed to them
// while keeping each member's previous target where balance allows
// (Kafka's uniform assignor is sticky the same way): first every member
// keeps up to the floor of the fair share of its previous partitions,
// then some keep one more (as many as the remainder allows), then the
// rest go to the least loaded subscriber.
func assignUniform(members []*consumerMember, topics []*metadata.TopicImage) []partitionSet {
	out := emptyTargets(len(members))
	u := newUniverse(members, topics)
	if u.active == 0 {
		return out
	}
	subscribers, partitions, all := u.subscribers, u.partitions, u.all
	active := u.active
	minQuota, extra := len(all)/active, len(all)%active
	taken := make(map[partitionKey]bool, len(all))
	counts := make([]int, len(members))
	valid := func(i int, p partitionKey) bool {
		if taken[p] || int(p.partition) >= partitions[p.topic] {
			return false
		}
		for _, s := range subscribers[p.topic] {
			if s == i {
				return true
			}
		}
		return false
	}
	give := func(i int, p partitionKey) {
		out[i][p] = struct{}{}
		taken[p] = true
		counts[i]++
	}
	for i, m := range members {
		for _, p := range sortedKeys(m.target) {
			if counts[i] < minQuota && valid(i, p) {
				give(i, p)
			}
		}
	}
	for i, m := range members {
		if extra == 0 {
			break
		}
		for _, p := range sortedKeys(m.target) {
			if valid(i, p) {
				give(i, p)
				extra--
				break
			}
		}
	}
	for _, p := range all {
		if taken[p] {
			continue
		}
		best := -1
		for _, i := range subscribers[p.topic] {
			if best < 0 || counts[i] < counts[best] {
				best = i
			}
		}
		give(best, p)
	}
	return out
}

func emptyTargets(n int) []partitionSet {
	out := make([]partitionSet, n)
	for i := range out {
		out[i] = partitionSet{}
	}
	return out
}

// sortedKeys is a set's partitions in topic id, partition order.
func sortedKeys(s partitionSet) []partitionKey {
	var out []partitionKey
	for _, t := range topicPartitionsOf(s) {
		for _, p := range t.Partitions {
			out = append(out, partitionKey{t.TopicID, p})
		}
	}
	return out
}

// universe is what the uniform assignor spreads: the partitions of the
// subscribed topics, who subscribes to each topic, and how many members
// subscribe to anything.
type universe struct {
	subscribers map[metadata.UUID][]int
	partitions  map[metadata.UUID]int
	all         []partitionKey
	active      int
}

func newUniverse(members []*consumerMember, topics []*metadata.TopicImage) universe {
	u := universe{subscribers: make(map[metadata.UUID][]int, len(topics)), partitions: make(map[metadata.UUID]int, len(topics))}
	active := map[int]bool{}
	for _, t := range topics {
		for i, m := range members {
			if m.subscribes(t.Name) {
				u.subscribers[t.ID] = append(u.subscribers[t.ID], i)
				active[i] = true
			}
		}
		if len(u.subscribers[t.ID]) == 0 {
			continue
		}
		u.partitions[t.ID] = len(t.Partitions)
		for p := range len(t.Partitions) {
			u.all = append(u.all, partitionKey{t.ID, int32(p)})
		}
	}
	u.active = len(active)
	return u
}
