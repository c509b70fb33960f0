package raft

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"path/filepath"
	"slices"

	etcdraft "go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// The quorum directory (metadata.log.dir):
//
//	<dir>/quorum-state                        hard state: term, vote, commit
//	<dir>/<index>-<term>.checkpoint           snapshots: the newest and one older
//	<dir>/__cluster_metadata-0/*.log, ...     the Raft log, internal/log segments
//
// Snapshots live beside the log directory, not in it, so that discarding the
// whole log for a snapshot received from the leader is one RemoveAll.
const (
	logDirName = "__cluster_metadata-0"
	// DefaultSegmentBytes is the Raft log's segment.bytes (Kafka's
	// metadata.log.segment.bytes minimum): compaction after a snapshot
	// deletes whole segments, so they are kept small.
	DefaultSegmentBytes = 8 << 20
	// defaultCacheBytes bounds the entries kept in memory; older ones are
	// read back from the segments when a slow follower needs them.
	defaultCacheBytes = 32 << 20
	// entryMemoryBytes is what an entry costs in memory beyond its data:
	// the struct, its pointer fields and the cache's slot.
	entryMemoryBytes = 128
	// readChunkBytes is how much of the log one read brings in.
	readChunkBytes = 1 << 20
	// entryOverheadBytes is what a record batch adds to an entry, at most:
	// the batch header and the record's framing. An entry larger than the
	// segment size less this cannot be stored.
	entryOverheadBytes = record.HeaderSize + 32
	// keptSnapshots is how many checkpoint files stay on disk: the newest,
	// and one older in case the newest turns out damaged while the log
	// still covers the gap.
	keptSnapshots = 2
)

// StorageOptions configure OpenStorage.
type StorageOptions struct {
	FS     vfs.FS
	Dir    string       // metadata.log.dir
	Clock  clock.Clock  // nil: the real clock (batch timestamps, segment.ms)
	Logger *slog.Logger // nil: slog.Default()
	// InitialConfState is the membership before the first snapshot: the
	// voters of controller.quorum.voters. Later changes (learners joining)
	// are log entries, replayed after the snapshot like any other.
	InitialConfState *raftpb.ConfState
	SegmentBytes     int64 // of the Raft log; 0: DefaultSegmentBytes
	CacheBytes       int64 // entries kept in memory; 0: 32 MiB
}

// Storage is etcdraft.Storage on disk. Raft index i is log offset i-1, one record
// batch per entry: the entry's term in the batch's partition leader epoch,
// its type and data in the one record's value ([1-byte type][data]). The log
// holds at least the entries after the newest snapshot; FirstIndex is always
// the snapshot's index + 1.
//
// Storage is not safe for concurrent use: the driver goroutine owns it (Raft
// calls it from there too). A failed write is sticky: every later write
// returns the error and the node stops, as the log does.
type Storage struct {
	fs           vfs.FS
	dir          string
	clock        clock.Clock
	logger       *slog.Logger
	segmentBytes int64
	cacheBytes   int64

	log              *log.Log
	hardState        *raftpb.HardState // Raft's latest
	persisted        *raftpb.HardState // what quorum-state holds
	snapshot         *raftpb.Snapshot  // the newest; index 0 when none
	snapshots        []snapshotFile    // on disk, oldest first
	initialConfState *raftpb.ConfState

	// cache holds the newest entries, contiguous and ending at the last
	// index; cacheSize is their memory (cachedSize), bounded by cacheBytes.
	cache     []*raftpb.Entry
	cacheSize int64
	scratch   []byte // encoding and read buffer
	err       error
}

var _ etcdraft.Storage = (*Storage)(nil)

// OpenStorage opens (creating if needed) the quorum directory: the newest
// valid snapshot, the hard state, and the log after the snapshot, which is
// validated batch by batch and loaded into the cache.
func OpenStorage(opts StorageOptions) (*Storage, error) {
	s := &Storage{
		fs: opts.FS, dir: opts.Dir, clock: opts.Clock, logger: opts.Logger,
		segmentBytes: opts.SegmentBytes, cacheBytes: opts.CacheBytes,
		initialConfState: raftpb.EnsureConfState(proto.CloneOf(opts.InitialConfState)),
	}
	if s.clock == nil {
		s.clock = clock.Real()
	}
	if s.logger == nil {
		s.logger = slog.Default()
	}
	if s.segmentBytes == 0 {
		s.segmentBytes = DefaultSegmentBytes
	}
	if s.cacheBytes == 0 {
		s.cacheBytes = defaultCacheBytes
	}
	if err := s.open(); err != nil {
		if s.log != nil {
			s.log.Close()
		}
		return nil, fmt.Errorf("quorum storage %s: %w", s.dir, err)
	}
	return s, nil
}

func (s *Storage) open() error {
	if err := s.fs.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	if err := s.loadSnapshot(); err != nil {
		return err
	}
	if err := s.loadHardState(); err != nil {
		return err
	}
	if err := s.openLog(); err != nil {
		return err
	}
	if err := s.loadCache(); err != nil {
		return err
	}
	// The commit index on disk may lag (it is written lazily) or lead the
	// log (written just before a crash cut the entries it covered); Raft
	// refuses both ends, and either bound is safe: a commit index is only
	// a hint that Raft relearns from the leader.
	commit := min(max(s.hardState.GetCommit(), s.snapIndex()), s.lastIndex())
	s.hardState.Commit = new(commit)
	return nil
}

// loadSnapshot reads the newest checkpoint that passes its checks. An older
// one is used only if the newest is damaged; the log check in openLog then
// fails unless the log still covers the gap.
func (s *Storage) loadSnapshot() error {
	files, err := listSnapshots(s.fs, s.dir)
	if err != nil {
		return err
	}
	s.snapshots = files
	s.snapshot = raftpb.EnsureSnapshot(nil)
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		b, err := readFileBounded(s.fs, s.path(f.name), maxSnapshotBytes)
		if err == nil {
			var snap *raftpb.Snapshot
			if snap, err = decodeSnapshot(b); err == nil && (snap.GetMetadata().GetIndex() != f.index || snap.GetMetadata().GetTerm() != f.term) {
				err = fmt.Errorf("snapshot %s holds index %d term %d: %w", f.name, snap.GetMetadata().GetIndex(), snap.GetMetadata().GetTerm(), ErrCorrupt)
			}
			if err == nil {
				s.snapshot = snap
				return nil
			}
		}
		s.logger.Error("skipping unreadable snapshot", "file", f.name, "err", err)
	}
	return nil
}

func (s *Storage) loadHardState() error {
	s.hardState = &raftpb.HardState{}
	b, err := readFileBounded(s.fs, s.path(hardStateFile), hardStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		s.persisted = proto.CloneOf(s.hardState)
		return nil
	}
	if err != nil {
		return err
	}
	if s.hardState, err = decodeHardState(b); err != nil {
		return err
	}
	s.persisted = proto.CloneOf(s.hardState)
	return nil
}

// openLog opens the Raft log and reconciles it with the snapshot. The log
// is opened from just before the snapshot, so the entry at the snapshot's
// index can be compared with it: a crash between persisting a snapshot
// received from the leader and discarding the old log leaves a log that may
// disagree with the snapshot, and then it goes.
func (s *Storage) openLog() error {
	snapIndex, snapTerm := s.snapIndex(), s.snapshot.GetMetadata().GetTerm()
	l, err := log.Open(s.fs, s.logDir(), s.logOptions(max(snapIndex, 1)-1))
	if err != nil {
		return err
	}
	s.log = l
	start, end := uint64(l.LogStartOffset()), uint64(l.LogEndOffset())
	switch {
	case start > snapIndex:
		return fmt.Errorf("log starts at index %d, after snapshot index %d: %w", start+1, snapIndex, ErrCorrupt)
	case end < snapIndex:
		return s.resetLog(snapIndex)
	case snapIndex == 0 || start == snapIndex:
		return nil
	}
	term, err := s.termFromDisk(snapIndex)
	if err != nil {
		return err
	}
	if term != snapTerm {
		s.logger.Warn("log disagrees with the snapshot; discarding it", "index", snapIndex, "log_term", term, "snapshot_term", snapTerm)
		return s.resetLog(snapIndex)
	}
	return nil
}

func (s *Storage) logOptions(startOffset uint64) log.Options {
	cfg := log.DefaultConfig()
	cfg.SegmentBytes = s.segmentBytes
	// Index files are preallocated: size them to the small segments
	// (an index entry per 4 KiB of log needs far less than 1/64).
	cfg.SegmentIndexBytes = max(1024, s.segmentBytes/64)
	cfg.RetentionMs, cfg.RetentionBytes = -1, -1 // only snapshots compact this log
	cfg.FlushPolicy = log.FlushAlways            // entries are durable before messages go out
	// RecoveryPoint 0: every batch is validated on open. The log is short
	// (compacted at each snapshot), and no checkpoint file is needed.
	return log.Options{Config: cfg, Clock: s.clock, Logger: s.logger, LogStartOffset: int64(startOffset)}
}

// resetLog deletes the whole log and starts an empty one whose first entry
// will be index after+1.
func (s *Storage) resetLog(after uint64) error {
	if err := s.log.Delete(); err != nil {
		return s.fail(err)
	}
	s.log = nil
	if err := s.fs.SyncDir(s.dir); err != nil {
		return s.fail(err)
	}
	l, err := log.Open(s.fs, s.logDir(), s.logOptions(after))
	if err != nil {
		return s.fail(err)
	}
	s.log = l
	clear(s.cache)
	s.cache, s.cacheSize = nil, 0
	return nil
}

// loadCache reads every entry after the snapshot, which validates them all,
// and keeps the newest in memory.
func (s *Storage) loadCache() error {
	for next := s.snapIndex() + 1; next <= s.lastIndex(); {
		ents, err := s.readEntries(next, s.lastIndex()+1, readChunkBytes)
		if err != nil {
			return err
		}
		s.appendCache(ents)
		next += uint64(len(ents))
	}
	return nil
}

func (s *Storage) path(name string) string { return filepath.Join(s.dir, name) }
func (s *Storage) logDir() string          { return filepath.Join(s.dir, logDirName) }
func (s *Storage) snapIndex() uint64       { return s.snapshot.GetMetadata().GetIndex() }

// lastIndex is the index of the last entry: log offset LEO-1 is index LEO.
func (s *Storage) lastIndex() uint64 { return uint64(s.log.LogEndOffset()) }

func (s *Storage) fail(err error) error {
	if s.err == nil {
		s.err = fmt.Errorf("quorum storage %s: %w", s.dir, err)
		s.logger.Error("quorum storage failed; no more writes", "err", err)
	}
	return s.err
}

// InitialState returns the hard state and the membership: the snapshot's,
// or the configured voters before the first snapshot.
func (s *Storage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	cs := s.initialConfState
	if s.snapIndex() > 0 {
		cs = s.snapshot.GetMetadata().GetConfState()
	}
	return proto.CloneOf(s.hardState), proto.CloneOf(cs), nil
}

// FirstIndex is the index after the snapshot.
func (s *Storage) FirstIndex() (uint64, error) { return s.snapIndex() + 1, nil }

// LastIndex is the index of the last entry, or the snapshot's if the log
// after it is empty.
func (s *Storage) LastIndex() (uint64, error) { return s.lastIndex(), nil }

// Snapshot returns the newest snapshot. It is never modified afterwards, so
// the transport may marshal it while the driver goes on.
func (s *Storage) Snapshot() (*raftpb.Snapshot, error) { return s.snapshot, nil }

// Term returns the term of entry i, for i from the snapshot's index on.
func (s *Storage) Term(i uint64) (uint64, error) {
	switch snapIndex := s.snapIndex(); {
	case i == snapIndex:
		return s.snapshot.GetMetadata().GetTerm(), nil
	case i < snapIndex:
		return 0, etcdraft.ErrCompacted
	case i > s.lastIndex():
		return 0, etcdraft.ErrUnavailable
	}
	if e := s.cached(i); e != nil {
		return e.GetTerm(), nil
	}
	return s.termFromDisk(i)
}

// Entries returns entries [lo, hi), at most maxSize bytes of them but at
// least one. Entries older than the cache come from disk.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	if lo <= s.snapIndex() {
		return nil, etcdraft.ErrCompacted
	}
	if hi > s.lastIndex()+1 || lo > hi {
		return nil, fmt.Errorf("entries [%d, %d) outside (%d, %d]: %w", lo, hi, s.snapIndex(), s.lastIndex(), etcdraft.ErrUnavailable)
	}
	if lo == hi {
		return nil, nil
	}
	if len(s.cache) > 0 && lo >= s.cache[0].GetIndex() {
		first := s.cache[0].GetIndex()
		ents := limitEntries(s.cache[lo-first:hi-first], maxSize)
		return slices.Clone(ents), nil
	}
	diskHi := hi
	if len(s.cache) > 0 {
		diskHi = min(hi, s.cache[0].GetIndex())
	}
	ents, err := s.readEntries(lo, diskHi, maxSize)
	if err != nil || uint64(len(ents)) < diskHi-lo {
		return ents, err
	}
	size := 0
	for _, e := range ents {
		size += proto.Size(e)
	}
	for i := diskHi; i < hi; i++ {
		e := s.cached(i)
		if size += proto.Size(e); uint64(size) > maxSize {
			break
		}
		ents = append(ents, e)
	}
	return ents, nil
}

// limitEntries returns the longest prefix of ents within maxSize bytes, at
// least one entry, measuring as Raft does.
func limitEntries(ents []*raftpb.Entry, maxSize uint64) []*raftpb.Entry {
	var size uint64
	for i, e := range ents {
		size += uint64(proto.Size(e))
		if i > 0 && size > maxSize {
			return ents[:i]
		}
	}
	return ents
}

func (s *Storage) cached(i uint64) *raftpb.Entry {
	if len(s.cache) == 0 || i < s.cache[0].GetIndex() {
		return nil
	}
	return s.cache[i-s.cache[0].GetIndex()]
}

// readEntries reads entries [lo, hi) from the log, at most maxSize bytes of
// them but at least one.
func (s *Storage) readEntries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	var ents []*raftpb.Entry
	var size uint64
	for next := lo; next < hi; {
		buf, err := s.readLog(next, hi, readChunkBytes)
		if err != nil {
			return nil, err
		}
		for rest := buf; len(rest) > 0; {
			batch, after, _, err := record.NextBatch(rest)
			if errors.Is(err, record.ErrTruncated) {
				break // the chunk ended inside a batch: read it whole next round
			}
			if err != nil {
				return nil, fmt.Errorf("read index %d: %w", next, err)
			}
			e, err := decodeEntry(batch, s.segmentBytes)
			if err != nil {
				return nil, err
			}
			if e.GetIndex() != next {
				return nil, fmt.Errorf("read index %d, found %d: %w", next, e.GetIndex(), ErrCorrupt)
			}
			size += uint64(proto.Size(e))
			if len(ents) > 0 && size > maxSize {
				return ents, nil
			}
			ents = append(ents, e)
			next++
			rest = after
		}
	}
	return ents, nil
}

// readLog returns the bytes of whole batches from index lo (at least one)
// up to index hi, in s.scratch.
func (s *Storage) readLog(lo, hi uint64, maxBytes int) ([]byte, error) {
	slice, err := s.log.Read(int64(lo-1), log.ReadOptions{MaxBytes: maxBytes, MaxOffset: int64(hi - 1), MinOneBatch: true})
	if err != nil {
		return nil, fmt.Errorf("read index %d: %w", lo, err)
	}
	defer slice.Release()
	buf, err := slice.AppendTo(s.scratch[:0])
	s.scratch = buf[:0]
	if err != nil {
		return nil, fmt.Errorf("read index %d: %w", lo, err)
	}
	if len(buf) == 0 {
		return nil, fmt.Errorf("read index %d: nothing there: %w", lo, ErrCorrupt)
	}
	return buf, nil
}

// termFromDisk reads the term of entry i from its batch header.
func (s *Storage) termFromDisk(i uint64) (uint64, error) {
	// The log never returns part of a batch, so the read takes the whole
	// batch's range (MinOneBatch) and only its header is read from it.
	slice, err := s.log.Read(int64(i-1), log.ReadOptions{MaxBytes: record.HeaderSize, MaxOffset: int64(i), MinOneBatch: true})
	if err != nil {
		return 0, fmt.Errorf("term of index %d: %w", i, err)
	}
	defer slice.Release()
	var buf [record.HeaderSize]byte
	if slice.Size < record.HeaderSize {
		return 0, fmt.Errorf("term of index %d: %d bytes there: %w", i, slice.Size, ErrCorrupt)
	}
	if _, err := slice.File().ReadAt(buf[:], slice.Position); err != nil {
		return 0, fmt.Errorf("term of index %d: %w", i, err)
	}
	h, err := record.ParseHeader(buf[:])
	if err != nil {
		return 0, fmt.Errorf("term of index %d: %w", i, err)
	}
	if h.BaseOffset != int64(i-1) || h.PartitionLeaderEpoch < 0 {
		return 0, fmt.Errorf("term of index %d: batch at offset %d, epoch %d: %w", i, h.BaseOffset, h.PartitionLeaderEpoch, ErrCorrupt)
	}
	return uint64(h.PartitionLeaderEpoch), nil
}

// encodeEntry appends e to dst as one record batch at offset index-1, the
// term as its partition leader epoch.
func encodeEntry(dst []byte, e *raftpb.Entry, nowMs int64, value []byte) ([]byte, []byte, error) {
	if e.GetTerm() > math.MaxInt32 || e.GetIndex() == 0 {
		return dst, value, fmt.Errorf("entry %d term %d does not fit a record batch", e.GetIndex(), e.GetTerm())
	}
	value = append(append(value[:0], byte(e.GetType())), e.GetData()...)
	dst, err := record.AppendBatch(dst, record.BatchOptions{
		BaseOffset:           int64(e.GetIndex() - 1),
		FirstTimestamp:       nowMs,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		PartitionLeaderEpoch: int32(e.GetTerm()),
	}, []record.Record{{Value: value}})
	return dst, value, err
}

// decodeEntry parses the one record of an entry's batch, copying its data.
func decodeEntry(batch []byte, maxBytes int64) (*raftpb.Entry, error) {
	h, err := record.ValidateBatch(batch)
	if err != nil {
		return nil, err
	}
	if h.RecordCount != 1 || h.PartitionLeaderEpoch < 0 {
		return nil, fmt.Errorf("entry batch at offset %d: %d records, epoch %d: %w", h.BaseOffset, h.RecordCount, h.PartitionLeaderEpoch, ErrCorrupt)
	}
	var e *raftpb.Entry
	err = record.Records(batch, int(maxBytes), func(r *record.Record) error {
		if len(r.Value) == 0 || r.Value[0] > byte(raftpb.EntryConfChangeV2) {
			return fmt.Errorf("entry at offset %d: bad value: %w", h.BaseOffset, ErrCorrupt)
		}
		e = &raftpb.Entry{
			Term:  new(uint64(h.PartitionLeaderEpoch)),
			Index: new(uint64(h.BaseOffset) + 1),
			Type:  raftpb.EntryType(r.Value[0]).Enum(),
		}
		if len(r.Value) > 1 {
			e.Data = slices.Clone(r.Value[1:])
		}
		return nil
	})
	return e, err
}

// Append writes entries Raft handed over in a Ready, durably, replacing any
// conflicting suffix of the log. Entries already in the snapshot are
// skipped.
func (s *Storage) Append(ents []*raftpb.Entry) error {
	if s.err != nil {
		return s.err
	}
	if len(ents) > 0 && ents[0].GetIndex() <= s.snapIndex() {
		ents = ents[min(s.snapIndex()-ents[0].GetIndex()+1, uint64(len(ents))):]
	}
	if len(ents) == 0 {
		return nil
	}
	first := ents[0].GetIndex()
	if first > s.lastIndex()+1 {
		return fmt.Errorf("append at index %d leaves a gap after %d", first, s.lastIndex())
	}
	if first <= s.lastIndex() {
		if err := s.truncate(first); err != nil {
			return err
		}
	}
	// One log append per run of one term (the term is stamped as the
	// append's leader epoch) and at most a segment's worth of bytes (the
	// most one append may carry).
	for rest := ents; len(rest) > 0; {
		n, size := 1, proto.Size(rest[0])
		for n < len(rest) && rest[n].GetTerm() == rest[0].GetTerm() && int64(size+proto.Size(rest[n])+entryOverheadBytes*(n+1)) <= s.segmentBytes {
			size += proto.Size(rest[n])
			n++
		}
		if err := s.appendRun(rest[:n]); err != nil {
			return err
		}
		rest = rest[n:]
	}
	s.appendCache(ents)
	return nil
}

// truncate removes entries from index first on: they conflict with the
// leader's. Raft never asks to remove a committed entry.
func (s *Storage) truncate(first uint64) error {
	if err := s.log.Truncate(int64(first - 1)); err != nil {
		return s.fail(err)
	}
	if s.lastIndex() != first-1 {
		return s.fail(fmt.Errorf("truncated to index %d, log ends at %d", first-1, s.lastIndex()))
	}
	if len(s.cache) > 0 && first <= s.cache[len(s.cache)-1].GetIndex() {
		keep := int(max(first, s.cache[0].GetIndex()) - s.cache[0].GetIndex())
		for _, e := range s.cache[keep:] {
			s.cacheSize -= cachedSize(e)
		}
		clear(s.cache[keep:])
		// Cap the slice: entries handed to Raft must not be overwritten.
		s.cache = s.cache[:keep:keep]
	}
	return nil
}

// appendRun appends entries of one term with one log append (one fsync),
// the term stamped as the batches' leader epoch.
func (s *Storage) appendRun(ents []*raftpb.Entry) error {
	buf := s.scratch[:0]
	var value []byte
	var err error
	nowMs := s.clock.Now().UnixMilli()
	for _, e := range ents {
		if buf, value, err = encodeEntry(buf, e, nowMs, value); err != nil {
			return err
		}
	}
	s.scratch = buf[:0]
	info, err := s.log.Append(buf, log.AppendOptions{LeaderEpoch: int32(ents[0].GetTerm())})
	if err != nil {
		return s.fail(err)
	}
	if uint64(info.FirstOffset) != ents[0].GetIndex()-1 {
		return s.fail(fmt.Errorf("entry %d appended at offset %d", ents[0].GetIndex(), info.FirstOffset))
	}
	return nil
}

// appendCache adds entries that continue the cache, evicting the oldest
// beyond the budget (the newest entry always stays).
func (s *Storage) appendCache(ents []*raftpb.Entry) {
	if len(s.cache) > 0 && s.cache[len(s.cache)-1].GetIndex()+1 != ents[0].GetIndex() {
		clear(s.cache)
		s.cache, s.cacheSize = nil, 0
	}
	for _, e := range ents {
		s.cacheSize += cachedSize(e)
	}
	s.cache = append(s.cache, ents...)
	drop := 0
	for drop < len(s.cache)-1 && s.cacheSize > s.cacheBytes {
		s.cacheSize -= cachedSize(s.cache[drop])
		drop++
	}
	s.dropCacheFront(drop)
}

func cachedSize(e *raftpb.Entry) int64 { return int64(len(e.GetData())) + entryMemoryBytes }

func (s *Storage) dropCacheFront(n int) {
	if n == 0 {
		return
	}
	clear(s.cache[:n])
	s.cache = s.cache[n:]
	if cap(s.cache) > 2*len(s.cache)+64 {
		s.cache = slices.Clone(s.cache) // let the dropped front be collected
	}
}

// SetHardState records Raft's hard state. Term and vote are written to disk
// at once (a vote forgotten in a crash could be cast twice); a change of
// the commit index alone waits for the next write or Close, since Raft
// relearns the commit index from the leader.
func (s *Storage) SetHardState(hs *raftpb.HardState) error {
	if s.err != nil {
		return s.err
	}
	s.hardState = proto.CloneOf(hs)
	if hs.GetTerm() == s.persisted.GetTerm() && hs.GetVote() == s.persisted.GetVote() {
		return nil
	}
	return s.persistHardState()
}

func (s *Storage) persistHardState() error {
	if err := vfs.WriteFileAtomic(s.fs, s.path(hardStateFile), encodeHardState(s.hardState)); err != nil {
		return s.fail(err)
	}
	s.persisted = proto.CloneOf(s.hardState)
	return nil
}

// ApplySnapshot installs a snapshot received from the leader: the file is
// made durable first, then the whole log is discarded (Raft replaces the
// log with the snapshot; entries after it arrive as new appends).
func (s *Storage) ApplySnapshot(snap *raftpb.Snapshot) error {
	if s.err != nil {
		return s.err
	}
	if snap.GetMetadata().GetIndex() <= s.snapIndex() {
		return etcdraft.ErrSnapOutOfDate
	}
	if err := s.writeSnapshot(snap); err != nil {
		return err
	}
	if err := s.resetLog(s.snapIndex()); err != nil {
		return err
	}
	s.removeOldSnapshots()
	return nil
}

// CreateSnapshot saves the state machine's snapshot at an applied index and
// compacts the log: segments wholly at or below the index are deleted.
func (s *Storage) CreateSnapshot(index uint64, cs *raftpb.ConfState, data []byte) error {
	if s.err != nil {
		return s.err
	}
	if index <= s.snapIndex() {
		return etcdraft.ErrSnapOutOfDate
	}
	if index > s.lastIndex() {
		return fmt.Errorf("snapshot at index %d past the log end %d", index, s.lastIndex())
	}
	term, err := s.Term(index)
	if err != nil {
		return err
	}
	snap := &raftpb.Snapshot{
		Data:     data,
		Metadata: &raftpb.SnapshotMetadata{ConfState: raftpb.EnsureConfState(proto.CloneOf(cs)), Index: new(index), Term: new(term)},
	}
	if err := s.writeSnapshot(snap); err != nil {
		return err
	}
	if _, err := s.log.DeleteRecordsBefore(int64(index)); err != nil {
		return s.fail(err)
	}
	if len(s.cache) > 0 && s.cache[0].GetIndex() <= index {
		n := int(index - s.cache[0].GetIndex() + 1)
		for _, e := range s.cache[:n] {
			s.cacheSize -= cachedSize(e)
		}
		s.dropCacheFront(n)
	}
	s.removeOldSnapshots()
	return nil
}

func (s *Storage) writeSnapshot(snap *raftpb.Snapshot) error {
	b, err := encodeSnapshot(snap)
	if err != nil {
		return err // too large: not a storage failure
	}
	meta := snap.GetMetadata()
	name := snapshotFileName(meta.GetIndex(), meta.GetTerm())
	if err := vfs.WriteFileAtomic(s.fs, s.path(name), b); err != nil {
		return s.fail(err)
	}
	s.snapshot = snap
	s.snapshots = append(s.snapshots, snapshotFile{index: meta.GetIndex(), term: meta.GetTerm(), name: name})
	return nil
}

// removeOldSnapshots deletes all but the newest checkpoint files. A failure
// only leaves an extra file behind.
func (s *Storage) removeOldSnapshots() {
	if len(s.snapshots) <= keptSnapshots {
		return
	}
	old := s.snapshots[:len(s.snapshots)-keptSnapshots]
	for _, f := range old {
		if err := s.fs.Remove(s.path(f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.logger.Warn("cannot remove old snapshot", "file", f.name, "err", err)
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		s.logger.Warn("cannot sync quorum directory", "err", err)
	}
	s.snapshots = slices.Delete(s.snapshots, 0, len(old))
}

// Close writes the latest commit index and closes the log.
func (s *Storage) Close() error {
	var err error
	if s.err == nil && s.log != nil && s.hardState.GetCommit() != s.persisted.GetCommit() {
		err = s.persistHardState()
	}
	if s.log == nil { // a failed reset left no log
		return err
	}
	if closeErr := s.log.Close(); err == nil {
		err = closeErr
	}
	return err
}
