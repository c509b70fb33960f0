package node

import (
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/share"
)

// newShares builds the share-group coordinator (KIP-932) from the broker
// config: its state files live in the log dir, next to the partitions.
func (n *Node) newShares() *share.Coordinator {
	cfg := n.opts.Config
	return share.New(share.Options{
		Config: share.Config{
			Group: sharegroup.GroupConfig{
				SessionTimeoutMs:    cfg.Int64(config.GroupShareSessionTimeoutMs),
				HeartbeatIntervalMs: cfg.Int64(config.GroupShareHeartbeatIntervalMs),
				MaxSize:             int(cfg.Int32(config.GroupShareMaxSize)),
			},
			Partition: sharegroup.PartitionConfig{
				LockDurationMs:     cfg.Int64(config.GroupShareRecordLockDurationMs),
				DeliveryCountLimit: int16(cfg.Int32(config.GroupShareDeliveryCountLimit)),
				MaxRecordLocks:     int(cfg.Int32(config.GroupSharePartitionMaxRecordLocks)),
			},
			AutoOffsetResetEarliest: cfg.String(config.ShareAutoOffsetReset) == config.ShareAutoOffsetResetEarliest,
			MaxSessions:             int(cfg.Int32(config.GroupShareMaxShareSessions)),
		},
		FS: n.opts.FS, Dir: cfg.LogDir(), Clock: n.opts.Clock, Partitions: n.parts, Logger: n.log,
	})
}
