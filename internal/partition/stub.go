package partition

// SKELETON stubs: the partition helper replaces this file with the real
// implementation, keeping these signatures.

import (
	"errors"
	"log/slog"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/vfs"
)

var errTODO = errors.New("partition: not implemented yet")

// Options configure a Manager.
type Options struct {
	NodeID int32
	Logs   *log.Manager // opened by the caller; the Manager does not close it
	FS     vfs.FS       // for producer-state snapshots and leader-epoch checkpoints
	Dir    string       // the log directory (same as Logs'), for those files
	Clock  clock.Clock
	Logger *slog.Logger
	// Image returns the newest metadata image; TopicDefaults the cluster-wide
	// topic config defaults by broker key (log.retention.ms → value), static
	// broker config merged under dynamic broker configs.
	Image         func() *metadata.Image
	TopicDefaults func() map[string]string
}

// Manager hosts this broker's partitions.
type Manager struct{}

// NewManager returns a Manager hosting nothing until Apply.
func NewManager(opts Options) (*Manager, error) { return &Manager{}, nil }

// Refresh brings hosted partitions in line with the newest image, if it
// changed since the last Refresh: opens (creating) the log of every
// partition whose replicas include this node, applies topic configs,
// records leader and leader epoch, and deletes the logs of partitions that
// left the image. The node calls it on every image change.
func (m *Manager) Refresh() error { return errTODO }

// Partition returns a hosted partition this node leads, refreshing first so
// a topic created a moment ago is found.
func (m *Manager) Partition(topic string, partition int32) (*Partition, error) {
	return nil, errTODO
}

// Close snapshots producer state and stops hosting; the caller closes Logs.
func (m *Manager) Close() error { return nil }

// Partition is one hosted partition.
type Partition struct{}

func (p *Partition) Append(records []byte) (AppendResult, error) { return AppendResult{}, errTODO }
func (p *Partition) Read(offset int64, opts ReadOptions) (ReadResult, error) {
	return ReadResult{}, errTODO
}
func (p *Partition) Offsets() Offsets                     { return Offsets{} }
func (p *Partition) LeaderEpoch() int32                   { return 0 }
func (p *Partition) CheckLeaderEpoch(current int32) error { return nil }
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	return 0, 0, false, errTODO
}
func (p *Partition) MaxTimestamp() (offset, timestamp int64, found bool, err error) {
	return 0, 0, false, errTODO
}
func (p *Partition) EndOffsetForLeaderEpoch(epoch int32) (leaderEpoch int32, endOffset int64) {
	return -1, -1
}
func (p *Partition) DeleteRecordsBefore(offset int64) (lowWatermark int64, err error) {
	return 0, errTODO
}
func (p *Partition) Producers() []ProducerState               { return nil }
func (p *Partition) Watch(ch chan<- struct{}) (cancel func()) { return func() {} }
