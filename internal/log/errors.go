package log

import "errors"

// Domain errors of the partition log. The network edge maps each to one Kafka
// error code (the mapping is named in each comment); nothing here knows codes.
var (
	// ErrOffsetOutOfRange: the offset is below the log start offset or above
	// the log end offset (OFFSET_OUT_OF_RANGE).
	ErrOffsetOutOfRange = errors.New("offset out of range")
	// ErrStorage: a write or fsync failed, so the log is read-only until the
	// broker restarts and recovers it from disk (KAFKA_STORAGE_ERROR).
	ErrStorage = errors.New("log storage error")
	// ErrClosed: the log was closed, usually because the broker is stopping
	// or the partition moved (NOT_LEADER_OR_FOLLOWER).
	ErrClosed = errors.New("log closed")
	// ErrRecordBatchTooLarge: one append is larger than segment.bytes and can
	// never fit in a segment (RECORD_LIST_TOO_LARGE).
	ErrRecordBatchTooLarge = errors.New("record batch larger than segment.bytes")
	// ErrInvalidRecords: the bytes to append are not valid v2 record batches;
	// the wrapped record error says why (CORRUPT_MESSAGE).
	ErrInvalidRecords = errors.New("invalid record batch")
	// ErrLogDirCorrupt: a log directory cannot be opened as a log, for
	// example an unparseable segment file name (KAFKA_STORAGE_ERROR).
	ErrLogDirCorrupt = errors.New("log directory corrupt")
	// ErrOffsetsOutOfOrder: a follower's append does not continue its log
	// (a batch below the log end offset, or batches out of order); only
	// replication sends these, so no client sees it (UNKNOWN_SERVER_ERROR).
	ErrOffsetsOutOfOrder = errors.New("follower batches out of order")
	// ErrAppendTruncated: a truncation removed an append's offsets before
	// the append saw them durable. Only a leader losing its leadership
	// truncates, so the producer retries on the new leader
	// (NOT_LEADER_OR_FOLLOWER).
	ErrAppendTruncated = errors.New("append truncated before it was acknowledged")
)
