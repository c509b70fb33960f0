package node

import (
	"math"

	"github.com/sluicelog/sluice/internal/quota"
)

// quotaWindow is how client quota rates are sampled.
func (n *Node) quotaWindow() quota.WindowConfig {
	cfg := n.opts.Config
	return quota.WindowConfig{Samples: int(cfg.Int32("quota.window.num")),
		WindowMs: int64(cfg.Int32("quota.window.size.seconds")) * 1000}
}

// connectionsPerIP maps max.connections.per.ip to netserver's form: its
// 0 is "no limit", Kafka's 0 is "none but the overrides".
func connectionsPerIP(v int32) int {
	switch v {
	case 0:
		return -1
	case math.MaxInt32:
		return 0
	}
	return int(v)
}

// connectionCreationRate maps Kafka's "unlimited" default to netserver's 0,
// so the accept loop meters nothing unless a limit is set.
func connectionCreationRate(v int32) float64 {
	if v == math.MaxInt32 {
		return 0
	}
	return float64(v)
}
