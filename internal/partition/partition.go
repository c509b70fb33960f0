// Package partition hosts this broker's replicas of partitions: Kafka's
// ReplicaManager for a node. It turns metadata images into open logs (with
// their topic configs) and roles: on the partitions it leads it validates
// and appends produce batches (sizes, timestamps, idempotent producer
// sequences, keys on compacted topics, re-encoding to the topic's
// compression.type: validate.go), tracks its followers (replica.LeaderState), keeps the high
// watermark and releases acks=all produces and long-polling fetches when it
// moves; on the partitions it follows, its replica fetchers copy the
// leader's log (fetcher.go, follower.go).
//
// Invariants:
//   - on a leader the high watermark is the smallest log end offset over
//     the ISR the controller committed (plus a pending expansion), counting
//     only the leader's durable appends; it only grows while the node leads;
//     consumer reads never return records at or past it;
//   - a follower's log holds the leader's batches byte for byte (offsets
//     and leader epochs), after truncating where the two diverged; its high
//     watermark is the leader's, capped by its own log end;
//   - an idempotent producer's batches reach the log in sequence order, each
//     at most once while its state is remembered: a retry of one of its last
//     5 batches is answered with the original offsets, and that state
//     survives restarts, crashes and leader changes (snapshots, a scan of
//     the log tail, and followers replaying what they append);
//   - different producers, and plain batches, append concurrently, so the
//     log's group commit shares one fsync among them;
//   - the leader-epoch cache holds an entry for the current leader epoch
//     before any batch stamped with that epoch is appended;
//   - the last stable offset never passes the first batch of an open
//     transaction, and passes an aborted one only once its .txnindex entry
//     is durable; open transactions survive restarts and failovers like
//     idempotent state (txn.go).
//
// Files in each partition directory, next to the log's segments:
// leader-epoch-checkpoint (Kafka's format, internal/replica),
// partition.metadata (Kafka's format: the topic id), and %020d.snapshot
// (producer state with open transactions, Sluice's format, drawn in
// snapshot.go); the log's segments carry the .txnindex files; in the log
// directory, replication-offset-checkpoint (the high watermarks, Kafka's
// format).
package partition

import (
	"errors"

	"github.com/sluicelog/sluice/internal/log"
)

// Domain errors; the edge maps each to the Kafka code named in its comment.
var (
	// ErrUnknownTopicOrPartition: no such topic or partition in the
	// metadata image (UNKNOWN_TOPIC_OR_PARTITION).
	ErrUnknownTopicOrPartition = errors.New("unknown topic or partition")
	// ErrNotLeader: the partition exists but this broker does not lead it
	// (NOT_LEADER_OR_FOLLOWER).
	ErrNotLeader = errors.New("not the leader for this partition")
	// ErrMessageTooLarge: a batch is larger than max.message.bytes
	// (MESSAGE_TOO_LARGE).
	ErrMessageTooLarge = errors.New("record batch larger than max.message.bytes")
	// ErrInvalidTimestamp: a CreateTime timestamp is outside
	// message.timestamp.before/after.max.ms (INVALID_TIMESTAMP).
	ErrInvalidTimestamp = errors.New("record timestamp out of range")
	// ErrOutOfOrderSequence: an idempotent batch leaves a gap in its
	// producer's sequence (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrInvalidProducerEpoch: the batch's producer epoch is older than
	// the one this partition has seen (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("producer epoch is fenced")
	// ErrTransactionsUnsupported: a transactional request this broker
	// cannot serve: it has no transaction coordinator (INVALID_REQUEST,
	// with this message).
	ErrTransactionsUnsupported = errors.New("transactions are not supported by this Sluice version yet")
	// ErrInvalidTxnState: a plain batch from a producer whose transaction
	// is open on the partition, or a transactional batch the transaction
	// coordinator says is not part of an ongoing transaction (KIP-890)
	// (INVALID_TXN_STATE).
	ErrInvalidTxnState = errors.New("producer's transaction state does not allow this write")
	// ErrTxnVerificationUnsupported: the transaction coordinator cannot
	// verify a partition's membership in a transaction (it answered
	// AddPartitionsToTxn's verify form with UNSUPPORTED_VERSION); the
	// produce is let through unverified, as by Kafka brokers before
	// KIP-890. Never sent to a client.
	ErrTxnVerificationUnsupported = errors.New("transaction coordinator cannot verify transactional produces")
	// ErrTransactionCoordinatorFenced: a transaction marker from a
	// coordinator epoch older than one the partition has seen
	// (TRANSACTION_COORDINATOR_FENCED).
	ErrTransactionCoordinatorFenced = errors.New("transaction coordinator epoch is fenced")
	// ErrFencedLeaderEpoch: the request's current leader epoch is older
	// than ours (FENCED_LEADER_EPOCH).
	ErrFencedLeaderEpoch = errors.New("fenced leader epoch")
	// ErrUnknownLeaderEpoch: the request's current leader epoch is newer
	// than ours; our metadata is behind (UNKNOWN_LEADER_EPOCH).
	ErrUnknownLeaderEpoch = errors.New("unknown leader epoch")
	// ErrNotEnoughReplicas: an acks=all produce while the ISR is smaller
	// than min.insync.replicas; nothing was appended (NOT_ENOUGH_REPLICAS).
	ErrNotEnoughReplicas = errors.New("fewer in-sync replicas than min.insync.replicas")
	// ErrNotEnoughReplicasAfterAppend: an acks=all produce was appended
	// and replicated, but the ISR had shrunk below min.insync.replicas
	// (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
	ErrNotEnoughReplicasAfterAppend = errors.New("in-sync replicas fell below min.insync.replicas after the append")
	// ErrNotFollower: a replica fetch from a broker that is not a replica
	// of the partition, or a fetcher writing to a partition it no longer
	// follows (NOT_LEADER_OR_FOLLOWER).
	ErrNotFollower = errors.New("not a follower of this partition")
	// ErrOffsetNotAvailable / out-of-range offsets come from the log
	// (log.ErrOffsetOutOfRange → OFFSET_OUT_OF_RANGE).
)

// AppendResult is a successful append.
type AppendResult struct {
	BaseOffset      int64 // offset of the first record appended
	LastOffset      int64
	LogAppendTimeMs int64 // -1 unless message.timestamp.type=LogAppendTime
	LogStartOffset  int64
	// Duplicate: every batch was a retry of one already appended; the
	// offsets are the original ones and nothing was written.
	Duplicate bool
}

// ReadOptions bound a Read.
type ReadOptions struct {
	MaxBytes int32
	// MinOneBatch returns the first batch whole even if it exceeds
	// MaxBytes (KIP-74), so a consumer always makes progress.
	MinOneBatch bool
	// CurrentLeaderEpoch is the epoch the client believes current; -1
	// skips the check.
	CurrentLeaderEpoch int32
	// ToLogEnd reads past the high watermark up to the log end: for the
	// coordinators loading their state on becoming leader, which must see
	// everything the leader will keep (a new leader's log end is what its
	// followers truncate to), not only what it already knows committed.
	// Never for clients.
	ToLogEnd bool
	// ReadCommitted bounds the read by the last stable offset instead of
	// the high watermark and lists the aborted transactions in the range
	// (isolation_level=read_committed).
	ReadCommitted bool
}

// ReadResult is a Read: Records must be released by the caller.
type ReadResult struct {
	Records          log.Slice
	HighWatermark    int64
	LastStableOffset int64
	LogStartOffset   int64
	LogEndOffset     int64
	// AbortedTxns are the aborted transactions overlapping a
	// read_committed read's range (nil for other reads).
	AbortedTxns []log.AbortedTxn
}

// Offsets are a partition's offsets at one moment.
type Offsets struct {
	LogStartOffset   int64
	HighWatermark    int64
	LogEndOffset     int64
	LastStableOffset int64
}

// ProducerState is one idempotent producer's state on a partition
// (DescribeProducers).
type ProducerState struct {
	ProducerID            int64
	ProducerEpoch         int16
	LastSequence          int32
	LastTimestampMs       int64
	CoordinatorEpoch      int32
	CurrentTxnStartOffset int64 // -1: none
}
