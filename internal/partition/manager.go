package partition

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/parallel"
	"github.com/sluicelog/sluice/internal/vfs"
)

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

	// ProducerIDExpirationMs is producer.id.expiration.ms: an idempotent
	// producer silent this long is forgotten (0: one day, Kafka's default).
	ProducerIDExpirationMs int64
	// MaxProducersPerPartition bounds the producers remembered per
	// partition (0: DefaultMaxProducersPerPartition).
	MaxProducersPerPartition int

	// Replication. AlterISR sends a leader's ISR change to the controller
	// (AlterPartition) and returns once it is committed or refused; nil
	// never changes an ISR. DialLeader connects to another broker for the
	// replica fetchers; nil fetches nothing (a node that cannot follow).
	AlterISR   func(ISRProposal) error
	DialLeader func(ctx context.Context, brokerID int32) (LeaderClient, error)
	Fetcher    FetcherConfig
	// ReplicaLagTimeMaxMs is replica.lag.time.max.ms (0: 30 s).
	ReplicaLagTimeMaxMs int64
	// ISRChanged is told when a committed ISR change reaches a partition
	// this node leads: shrunk or grown (Kafka's IsrShrinks/IsrExpands
	// metrics). Nil: nobody is told.
	ISRChanged func(shrunk bool)
}

// Manager hosts this broker's partitions.
//
// Locks: refreshMu (one Refresh or Close at a time) before mu, which guards
// the hosted set and is never held across I/O.
type Manager struct {
	opts Options

	refreshMu  sync.Mutex
	refreshed  atomic.Pointer[metadata.Image] // the image the hosted set reflects
	refreshing atomic.Bool                    // a Refresh is running: Partition does not wait for it

	mu       sync.RWMutex
	image    *metadata.Image
	parts    map[log.TopicPartition]*Partition
	openErrs map[log.TopicPartition]error // partitions whose log failed to open
	// pending are the running Refresh's partitions to host, hosting those
	// being hosted now (closed when done): see hostAll.
	pending map[log.TopicPartition]hostJob
	hosting map[log.TopicPartition]chan struct{}
	closed  bool

	// snapshotSweepMu: one producer-state snapshot sweep at a time
	// (snapshotProducers), taken before any partition's snapshotMu.
	snapshotSweepMu sync.Mutex
	// snapshotSweepFault, nil but in tests, runs between a sweep's
	// writes and its syncfs.
	snapshotSweepFault func()

	fetchers *fetcherSet
	// checkpointedHW are the high watermarks read at start-up from
	// replication-offset-checkpoint; a partition opened later starts there.
	checkpointedHW map[log.TopicPartition]int64

	// Owned by Refresh (under refreshMu).
	topics        map[string]topicState
	lastDefaults  map[string]string
	straysRemoved bool
}

// topicState is what the last Refresh saw of a topic, so an image change
// elsewhere costs this topic a pointer and map comparison.
type topicState struct {
	image   *metadata.TopicImage
	configs map[string]string
	hosted  []log.TopicPartition
}

// NewManager returns a Manager hosting nothing until Refresh.
func NewManager(opts Options) (*Manager, error) {
	if opts.Logs == nil || opts.FS == nil || opts.Image == nil {
		return nil, errors.New("partition: Options need Logs, FS and Image")
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.TopicDefaults == nil {
		opts.TopicDefaults = func() map[string]string { return nil }
	}
	if opts.ProducerIDExpirationMs <= 0 {
		opts.ProducerIDExpirationMs = DefaultProducerIDExpirationMs
	}
	if opts.MaxProducersPerPartition <= 0 {
		opts.MaxProducersPerPartition = DefaultMaxProducersPerPartition
	}
	if opts.ReplicaLagTimeMaxMs <= 0 {
		opts.ReplicaLagTimeMaxMs = 30_000
	}
	m := &Manager{
		opts: opts, image: metadata.EmptyImage(),
		parts: map[log.TopicPartition]*Partition{}, openErrs: map[log.TopicPartition]error{},
		hosting: map[log.TopicPartition]chan struct{}{},
		topics:  map[string]topicState{},
	}
	m.fetchers = newFetcherSet(m)
	opts.Logs.OnLogStartMoved(m.logStartMoved)
	hws, err := log.ReadOffsetCheckpoint(opts.FS, opts.Dir+"/"+replicationOffsetCheckpointFile)
	if err != nil {
		// Derived data: without it replicas start their HW at the log
		// start, and the ISR moves it up again.
		opts.Logger.Warn("ignoring unreadable high watermark checkpoint", "err", err)
		hws = nil
	}
	m.checkpointedHW = hws
	return m, nil
}

// replicationOffsetCheckpointFile is Kafka's name for the high watermarks
// of a log directory's partitions (the log package's checkpoint format).
const replicationOffsetCheckpointFile = "replication-offset-checkpoint"

// brokerEligible says whether a broker may join an ISR: registered and
// unfenced in the newest image (the controller refuses anyone else).
func (m *Manager) brokerEligible(id int32) bool {
	b, ok := m.currentImage().Broker(id)
	return ok && !b.Fenced
}

// follow points the partition's replica fetcher at its leader, or stops
// fetching it when this node leads it or nobody does.
func (m *Manager) follow(p *Partition, pi *metadata.PartitionImage) {
	if pi.Leader == m.opts.NodeID || pi.Leader < 0 || m.opts.DialLeader == nil {
		m.fetchers.remove(p.tp)
		return
	}
	m.fetchers.follow(p, pi.Leader, pi.LeaderEpoch)
}

// RunISRChecks shrinks the ISR of led partitions whose followers fell
// behind, every half replica.lag.time.max.ms (as Kafka's ISR expiration
// task does), until ctx ends.
func (m *Manager) RunISRChecks(ctx context.Context) {
	t := m.opts.Clock.NewTicker(time.Duration(m.opts.ReplicaLagTimeMaxMs/2) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		m.mu.RLock()
		parts := slices.Collect(maps.Values(m.parts))
		m.mu.RUnlock()
		for _, p := range parts {
			if p.role.Load().isLeader {
				p.MaybeShrinkISR(m.opts.ReplicaLagTimeMaxMs)
			}
		}
	}
}

func (m *Manager) currentImage() *metadata.Image {
	if img := m.opts.Image(); img != nil {
		return img
	}
	return metadata.EmptyImage()
}

// Refresh brings hosted partitions in line with the newest image, if it
// changed since the last Refresh: opens (creating) the log of every
// partition whose replicas include this node, applies topic configs,
// records leader and leader epoch, and deletes the logs of partitions that
// left the image. The node calls it on every image change.
func (m *Manager) Refresh() error {
	img := m.currentImage()
	if m.refreshed.Load() == img {
		return nil // the common case, on every Partition call
	}
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	// The Refresh this one waited for may have applied a newer image than
	// the one read above. Applying the older one after it would delete
	// the logs of every topic created in between; images only move
	// forward, so the newest is read again.
	img = m.currentImage()
	if m.refreshed.Load() == img {
		return nil
	}
	m.refreshing.Store(true)
	defer m.refreshing.Store(false)
	m.mu.RLock()
	closed := m.closed
	m.mu.RUnlock()
	if closed {
		return fmt.Errorf("partition manager: %w", log.ErrClosed)
	}
	err := m.refreshLocked(img)
	m.mu.Lock()
	m.image = img
	m.mu.Unlock()
	m.refreshed.Store(img)
	return err
}

func (m *Manager) refreshLocked(img *metadata.Image) error {
	defaults := m.opts.TopicDefaults()
	defaultsChanged := !maps.Equal(defaults, m.lastDefaults)
	m.lastDefaults = maps.Clone(defaults)
	wanted := map[log.TopicPartition]bool{}
	var jobs []hostJob
	for _, t := range img.Topics() {
		configs := img.Configs(metadata.ConfigResourceTopic, t.Name)
		if prev, ok := m.topics[t.Name]; ok && prev.image == t && !defaultsChanged && maps.Equal(prev.configs, configs) && m.allHosted(prev.hosted) {
			for _, tp := range prev.hosted {
				wanted[tp] = true
			}
			continue
		}
		cfg, settings := topicSettings(config.TopicValues{Overrides: configs, BrokerDefaults: defaults})
		st := topicState{image: t, configs: configs}
		for i, pi := range t.Partitions {
			if !slices.Contains(pi.Replicas, m.opts.NodeID) {
				continue
			}
			tp := log.TopicPartition{Topic: t.Name, Partition: int32(i)}
			wanted[tp] = true
			st.hosted = append(st.hosted, tp)
			jobs = append(jobs, hostJob{tp: tp, topicID: t.ID, pi: pi, cfg: cfg, settings: settings})
		}
		m.topics[t.Name] = st
	}
	errs := m.hostAll(jobs)
	for name := range m.topics {
		if _, ok := img.Topic(name); !ok {
			delete(m.topics, name)
		}
	}
	errs = append(errs, m.unhostAllBut(wanted))
	errs = append(errs, m.removeStrays(img, wanted))
	return errors.Join(errs...)
}

// hostJob is one partition a Refresh opens or updates.
type hostJob struct {
	tp       log.TopicPartition
	topicID  metadata.UUID
	pi       *metadata.PartitionImage
	cfg      log.Config
	settings appendSettings
}

// hostParallelism bounds the partitions opened or re-led at once. Hosting
// a partition is mostly waiting for fsyncs (its directory, its
// partition.metadata, a new leader epoch's checkpoint), a few milliseconds
// each, which a disk serves many at a time: one at a time, creating a
// 10,000-partition topic or restarting with one took a minute, and every
// request for a partition not yet open waited for all of it.
const hostParallelism = 32

// hostAll runs host for every job, hostParallelism at a time; partitions are
// independent, and each job touches only its own partition. Meanwhile the
// jobs are pending: a request for one of them hosts it at once
// (hostPending) rather than wait for the rest.
func (m *Manager) hostAll(jobs []hostJob) []error {
	pending := make(map[log.TopicPartition]hostJob, len(jobs))
	for _, j := range jobs {
		pending[j.tp] = j
	}
	m.mu.Lock()
	m.pending = pending
	m.mu.Unlock()
	defer func() {
		// No request starts hosting once pending is gone; wait for those
		// that did, so none outlives this Refresh (the next one might
		// delete the partition it is opening).
		m.mu.Lock()
		m.pending = nil
		running := slices.Collect(maps.Values(m.hosting))
		m.mu.Unlock()
		for _, done := range running {
			<-done
		}
	}()
	var (
		errMu sync.Mutex
		errs  []error
	)
	parallel.ForEach(jobs, hostParallelism, func(j hostJob) {
		if err := m.hostOnce(j); err != nil {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}
	})
	return errs
}

// hostOnce runs one job unless another goroutine is running the same
// partition's (a worker and a request), then waits for that one. Only the
// goroutine that ran it returns its error; it is in openErrs for all.
func (m *Manager) hostOnce(j hostJob) error {
	m.mu.Lock()
	return m.hostOnceLocked(j)
}

// hostOnceLocked is hostOnce with m.mu held; it releases it.
func (m *Manager) hostOnceLocked(j hostJob) error {
	if done, ok := m.hosting[j.tp]; ok {
		m.mu.Unlock()
		<-done
		return nil
	}
	done := make(chan struct{})
	m.hosting[j.tp] = done
	m.mu.Unlock()
	err := m.host(j.tp, j.topicID, j.pi, j.cfg, j.settings)
	m.mu.Lock()
	delete(m.hosting, j.tp)
	close(done)
	if err != nil {
		m.openErrs[j.tp] = err
	}
	m.mu.Unlock()
	if err != nil {
		m.opts.Logger.Error("cannot host partition", "partition", j.tp.String(), "err", err)
	}
	return err
}

// hostPending hosts a partition the running Refresh has not reached yet,
// so a request for it waits for its own log, not for all the others. It
// reports whether the partition was pending.
func (m *Manager) hostPending(tp log.TopicPartition) bool {
	m.mu.Lock()
	j, ok := m.pending[tp]
	if !ok {
		m.mu.Unlock()
		return false
	}
	// Registered under the same lock that found it pending, so hostAll
	// waits for it before its Refresh ends.
	_ = m.hostOnceLocked(j) // a failure is in openErrs
	return true
}

// allHosted reports whether every partition of a topic is open (a failed
// one is retried at the next Refresh that runs: a new image, or the
// checkpoint tick's retryFailedHosts).
func (m *Manager) allHosted(tps []log.TopicPartition) bool {
	for _, tp := range tps {
		if _, ok := m.parts[tp]; !ok {
			return false
		}
	}
	return true
}

// host opens or updates one partition this node is a replica of.
func (m *Manager) host(tp log.TopicPartition, topicID metadata.UUID, pi *metadata.PartitionImage, cfg log.Config, settings appendSettings) error {
	// Refresh is the only writer of parts, but its workers run in
	// parallel, each on its own partition: read under the lock.
	m.mu.RLock()
	p := m.parts[tp]
	m.mu.RUnlock()
	if p != nil && p.topicID != topicID {
		// The topic was deleted and created again between two images.
		if err := m.unhost(tp, p); err != nil {
			return err
		}
		p = nil
	}
	if p == nil {
		l, err := m.openLog(tp, topicID, cfg)
		if err != nil {
			return err
		}
		if p, err = m.openPartition(tp, topicID, l, settings); err != nil {
			return err
		}
		m.mu.Lock()
		m.parts[tp] = p
		delete(m.openErrs, tp)
		m.mu.Unlock()
		// Retention may have moved the log start since the cache was
		// loaded, while logStartMoved could not find p yet.
		p.trimEpochsToLogStart()
	} else if p.log.Config() != cfg {
		if err := p.log.SetConfig(cfg); err != nil {
			return err
		}
	}
	p.settings.Store(&settings)
	err := p.setRole(leadership{leader: pi.Leader, leaderEpoch: pi.LeaderEpoch, isLeader: pi.Leader == m.opts.NodeID}, pi, m.opts.NodeID)
	p.applyCommitted(pi)
	m.follow(p, pi)
	return err
}

// openLog opens the partition's log with the topic's config, replacing a
// log left by an older topic of the same name (its partition.metadata names
// another topic id).
func (m *Manager) openLog(tp log.TopicPartition, topicID metadata.UUID, cfg log.Config) (*log.Log, error) {
	l, err := m.opts.Logs.GetOrCreate(tp, cfg)
	if err != nil {
		return nil, err
	}
	if l.Config() != cfg {
		if err := l.SetConfig(cfg); err != nil {
			return nil, err
		}
	}
	if topicID == (metadata.UUID{}) {
		return l, nil
	}
	path := l.Dir() + "/" + partitionMetadataFile
	data, err := vfs.ReadFile(m.opts.FS, path, maxPartitionMetadataBytes)
	switch {
	case err == nil && bytes.Equal(data, encodePartitionMetadata(topicID)):
		return l, nil
	case err == nil:
		m.opts.Logger.Warn("log belongs to an earlier topic of the same name; deleting it", "partition", tp.String())
		if err := m.opts.Logs.Delete(tp); err != nil {
			return nil, err
		}
		if l, err = m.opts.Logs.GetOrCreate(tp, cfg); err != nil {
			return nil, err
		}
	case !isNotExist(err):
		return nil, err
	}
	return l, vfs.WriteFileAtomic(m.opts.Logs.FS(), path, encodePartitionMetadata(topicID))
}

// partitionMetadataFile is Kafka's partition.metadata: the topic id a
// partition directory belongs to, so a log outliving its topic (deleted
// while this broker was down) is not mistaken for a new topic's.
const (
	partitionMetadataFile     = "partition.metadata"
	maxPartitionMetadataBytes = 4096
)

// encodePartitionMetadata writes Kafka's format: "version: 0" and the topic
// id as Kafka prints a Uuid (URL-safe base64 without padding).
func encodePartitionMetadata(id metadata.UUID) []byte {
	return []byte("version: 0\ntopic_id: " + base64.RawURLEncoding.EncodeToString(id[:]) + "\n")
}

func (m *Manager) openPartition(tp log.TopicPartition, topicID metadata.UUID, l *log.Log, settings appendSettings) (*Partition, error) {
	p := &Partition{
		tp: tp, topicID: topicID, log: l, logs: m.opts.Logs, fs: m.opts.Logs.FS(), clock: m.opts.Clock,
		logger:     m.opts.Logger.With("partition", tp.String()),
		producers:  newProducerTable(m.opts.MaxProducersPerPartition, m.opts.ProducerIDExpirationMs),
		alterISR:   m.opts.AlterISR,
		isrChanged: m.opts.ISRChanged,

		lagTimeMaxMs:   m.opts.ReplicaLagTimeMaxMs,
		brokerEligible: m.brokerEligible,
	}
	p.role.Store(&leadership{leader: metadata.NoLeader, leaderEpoch: -1})
	p.settings.Store(&settings)
	// Only the checkpoint says how much of the recovered log the ISR had
	// (it never names more than was committed); without one start at the
	// log start. The leader state (at once for a single replica) or the
	// leader's fetch responses move it up from there.
	hw := l.LogStartOffset()
	if c, ok := m.checkpointedHW[tp]; ok {
		hw = min(max(c, hw), l.LogEndOffset())
	}
	p.highWatermark.Store(hw)
	if err := p.loadLeaderEpochs(); err != nil {
		return nil, err
	}
	if err := p.loadProducers(); err != nil {
		return nil, err
	}
	// The cleaner stays below the high watermark, on leaders and followers
	// alike: above it a record may still be truncated, and compaction must
	// not drop a record that only a truncated one superseded.
	l.SetCleanableBound(p.highWatermark.Load)
	return p, nil
}

// unhostAllBut stops hosting and deletes every partition not wanted.
func (m *Manager) unhostAllBut(wanted map[log.TopicPartition]bool) error {
	var errs []error
	for tp, p := range m.parts {
		if !wanted[tp] {
			errs = append(errs, m.unhost(tp, p))
		}
	}
	m.mu.Lock()
	for tp := range m.openErrs {
		if !wanted[tp] {
			delete(m.openErrs, tp)
		}
	}
	m.mu.Unlock()
	return errors.Join(errs...)
}

func (m *Manager) unhost(tp log.TopicPartition, p *Partition) error {
	p.setRole(leadership{leader: metadata.NoLeader, leaderEpoch: p.LeaderEpoch(), stopped: true}, nil, m.opts.NodeID)
	m.fetchers.remove(tp)
	m.mu.Lock()
	delete(m.parts, tp)
	m.mu.Unlock()
	// A Checkpoint may hold p still: once the log is deleted, a topic of
	// the same name may be created, and p's snapshot would land in the
	// new log's directory (its path), whose next start loaded it. Marked
	// under snapshotMu, which also waits for a snapshot being written.
	p.snapshotMu.Lock()
	p.deleted = true
	p.snapshotMu.Unlock()
	// So may the leader epoch checkpoint: retention's listener
	// (logStartMoved) may have found p hosted before it was removed above.
	p.epochMu.Lock()
	p.epochsDeleted = true
	p.epochMu.Unlock()
	if err := m.opts.Logs.Delete(tp); err != nil {
		return fmt.Errorf("partition %s: delete: %w", tp, err)
	}
	m.opts.Logger.Info("deleted partition no longer hosted here", "partition", tp.String())
	return nil
}

// metadataTopic is the Raft log's directory name prefix: it may share the
// log directory (metadata.log.dir defaults to it in Kafka) and is never a
// stray.
const metadataTopic = "__cluster_metadata"

// removeStrays deletes, once, the logs found on disk at start-up that the
// first real image does not place here (their topic was deleted or moved
// while this broker was down).
func (m *Manager) removeStrays(img *metadata.Image, wanted map[log.TopicPartition]bool) error {
	if m.straysRemoved || img.Offset() < 0 {
		return nil
	}
	m.straysRemoved = true
	var errs []error
	for _, tp := range m.opts.Logs.Partitions() {
		if wanted[tp] || tp.Topic == metadataTopic {
			continue
		}
		m.opts.Logger.Warn("deleting stray log of a partition not hosted here", "partition", tp.String())
		if err := m.opts.Logs.Delete(tp); err != nil {
			errs = append(errs, fmt.Errorf("partition %s: delete stray: %w", tp, err))
		}
	}
	return errors.Join(errs...)
}

// Partition returns a hosted partition this node leads, refreshing first so
// a topic created a moment ago is found.
func (m *Manager) Partition(topic string, partition int32) (*Partition, error) {
	tp := log.TopicPartition{Topic: topic, Partition: partition}
	// The hot path does not wait for a Refresh already running: one that
	// opens or deletes many logs would stall every produce and fetch. A
	// partition already led is served meanwhile. Otherwise Refresh first
	// (a no-op when the image is unchanged), so a topic created or a
	// config altered a moment ago is seen.
	//
	// Nor does a request for a partition not open yet: a Refresh that
	// opens thousands of new partitions takes seconds, and every
	// ListOffsets, DescribeLogDirs or produce for any of them would wait
	// for all of them. The request hosts its own partition first if the
	// running Refresh has it pending (the worker that reaches it later
	// finds it open).
	m.mu.RLock()
	p, ok := m.parts[tp]
	m.mu.RUnlock()
	refreshing := m.refreshing.Load()
	if ok && p.role.Load().isLeader && refreshing {
		return p, nil
	}
	if !refreshing || !m.hostPending(tp) {
		// A partition of an image newer than the running Refresh's
		// waits for it and the next; so does a request in the moment
		// before a Refresh has listed its jobs.
		_ = m.Refresh() // failures are per partition: see openErrs
		refreshing = false
	}
	m.mu.RLock()
	p, ok = m.parts[tp]
	openErr, closed, img := m.openErrs[tp], m.closed, m.image
	m.mu.RUnlock()
	if refreshing {
		img = m.currentImage()
	}
	switch {
	case closed:
		return nil, fmt.Errorf("partition %s: %w", tp, log.ErrClosed)
	case ok && p.role.Load().isLeader:
		return p, nil
	case openErr != nil:
		return nil, openErr
	}
	pi, found := img.Partition(topic, partition)
	if !found {
		return nil, fmt.Errorf("partition %s: %w", tp, ErrUnknownTopicOrPartition)
	}
	return nil, fmt.Errorf("partition %s (leader %d, epoch %d, this node %d): %w", tp, pi.Leader, pi.LeaderEpoch, m.opts.NodeID, ErrNotLeader)
}

// logStartMoved trims the leader epoch cache of a hosted partition whose
// log start offset retention moved; a log not hosted yet is trimmed when
// its partition loads (loadLeaderEpochs), and again once it is hosted
// (host), for a start moved in between.
func (m *Manager) logStartMoved(tp log.TopicPartition) {
	m.mu.RLock()
	p := m.parts[tp]
	m.mu.RUnlock()
	if p != nil {
		p.trimEpochsToLogStart()
	}
}

// Checkpoint snapshots the producer state of every partition whose log
// moved since its last snapshot. The node calls it periodically (with the
// log manager's checkpoint interval), bounding the log a restart re-reads.
// On the same tick, partitions that failed to open are hosted again.
func (m *Manager) Checkpoint() error {
	m.retryFailedHosts()
	m.mu.RLock()
	parts := slices.Collect(maps.Values(m.parts))
	m.mu.RUnlock()
	failed, err := m.snapshotProducers(parts, snapshotSweepParallelism)
	errs := []error{err}
	for p, err := range failed {
		if !p.role.Load().stopped {
			errs = append(errs, err)
		}
	}
	return errors.Join(append(errs, m.checkpointHighWatermarks(parts))...)
}

// retryFailedHosts runs a Refresh of the current image again if a
// partition failed to open: Refresh otherwise retries it only at the next
// image, and a failure that has cleared since (an old log's deletion,
// which the log manager's retention tick finishes, blocking the log of a
// topic created again under its name) left the partition unavailable on
// a cluster whose metadata stays still.
func (m *Manager) retryFailedHosts() {
	m.mu.RLock()
	failed := len(m.openErrs) > 0
	m.mu.RUnlock()
	if failed {
		m.refreshed.Store(nil)
		_ = m.Refresh() // failures are per partition, logged: see openErrs
	}
}

// checkpointHighWatermarks writes every hosted partition's high watermark,
// so a restarted replica serves what was committed at once rather than
// waiting for its ISR to say so again.
func (m *Manager) checkpointHighWatermarks(parts []*Partition) error {
	hws := make(map[log.TopicPartition]int64, len(parts))
	for _, p := range parts {
		hws[p.tp] = p.highWatermark.Load()
	}
	if err := log.WriteOffsetCheckpoint(m.opts.Logs.FS(), m.opts.Dir+"/"+replicationOffsetCheckpointFile, hws); err != nil {
		return fmt.Errorf("high watermark checkpoint: %w", err)
	}
	return nil
}

// LogDirUsage is the size of the volume holding the log directory, as
// DescribeLogDirs v4 reports it; errors.ErrUnsupported when the FS cannot
// tell (the in-memory one).
func (m *Manager) LogDirUsage() (vfs.VolumeUsage, error) {
	return vfs.Volume(m.opts.FS, m.opts.Dir)
}

// Close snapshots producer state and stops hosting; the caller closes Logs.
func (m *Manager) Close() error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	parts := slices.Collect(maps.Values(m.parts))
	m.mu.Unlock()
	m.fetchers.stopAll()
	// Stopping first (it waits for appends in flight) makes the final
	// snapshots cover everything appended.
	parallel.ForEach(parts, hostParallelism, func(p *Partition) {
		p.setRole(leadership{leader: metadata.NoLeader, leaderEpoch: p.LeaderEpoch(), stopped: true}, nil, m.opts.NodeID)
	})
	failed, err := m.snapshotProducers(parts, hostParallelism)
	errs := []error{err}
	for _, err := range failed {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, m.checkpointHighWatermarks(parts))...)
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Hosted returns every partition this node hosts a replica of, led or
// followed, in no order: a copy, so a metrics scrape walks it without
// holding up Refresh or the hot path.
func (m *Manager) Hosted() []*Partition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]*Partition, 0, len(m.parts))
	for _, p := range m.parts {
		out = append(out, p)
	}
	return out
}
