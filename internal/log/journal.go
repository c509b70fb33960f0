package log

// The write-ahead journal of a log directory (docs/proposals.md, section
// 1; opt-in with log.flush.journal). With fsync before every ack, a
// produce spread over many partitions makes many segment files durable
// at once; a syncfs of the directory does that file by file, and so does
// ext4 for parallel fdatasyncs, each with its own journal commit. The
// journal instead appends a copy of each small round, after its segment
// write, to one preallocated file, and one fdatasync of that file makes
// every queued round durable (group commit, as a log's own rounds). The
// segment files are made durable later, together, by a checkpoint's
// syncfs; until then a crash is repaired by replaying the journal onto
// the logs' recovered ends.
//
// Files. <dir>/0.wal and <dir>/1.wal, FileBytes each, written in full
// (zeros) and fsynced when created, so that overwriting them changes no
// file-system metadata and an fdatasync writes only the data. One is
// active, the other spare (or being checkpointed). Each starts with a
// header:
//
//	magic "SLJ1" | generation uint64 | CRC-32C of the 12 bytes before
//
// and holds records from byte journalHeaderBytes on:
//
//	length     uint32  bytes after this field
//	crc        uint32  CRC-32C (Castagnoli) of every byte after this field
//	generation uint64  the file's generation when the record was written
//	kind       uint8   journalAppend or journalFence
//	nameLen    uint16
//	name       []byte  the log's directory name (<topic>-<partition>)
//	offset     int64   append: base offset of the first batch; fence: from
//	payload    []byte  append: the batches as written to the segment
//
// A scan of a file ends at the first record whose length runs past the
// file, whose CRC fails or whose generation is not the file's: a torn
// write, zeros, or a record of the file's earlier use. Files are replayed
// in the order of their header generations.
//
// Fences. Replay only appends at a log's end, but a truncation moves the
// end back, and a record journaled before it would bring back batches the
// truncation dropped. A log truncating to from first journals a fence
// (Fence(name, from)) and waits for it: replay drops, from every record of
// that log before the fence, the batches at offsets >= from (from < 0:
// every batch, for a full truncation or a deletion).
//
// Checkpoints. When the active file has no room for the next records, the
// spare becomes active (generation + 1) and the old one is checkpointed
// in the background: one syncfs of the directory's file system (every
// segment write of its records happened before the record was queued, so
// before the syncfs began), then Checkpointed with the end each log
// reached in it, which moves the logs' recovery points; then it is the
// spare. Checkpoint forces the same, so that an idle journal does not
// keep a long replay for a restart.
//
// Errors. A failed write or fdatasync of the journal fails it for good:
// every Wait covering the failed records returns the error, and Append
// refuses from then on (the logs fall back to their own syncs; a log that
// got the error is failed as by a failed fsync). A failed checkpoint
// syncfs fails the journal too, and its retired file is never reused.

import (
	"errors"
	"log/slog"

	"github.com/sluicelog/sluice/internal/vfs"
)

const (
	journalHeaderBytes = 16
	journalAppend      = 1
	journalFence       = 2
	// DefaultJournalFileBytes is each journal file's size.
	DefaultJournalFileBytes = 64 << 20
)

// ErrJournalFull is Wait's answer for records that did not fit in the
// active file while the spare was still being checkpointed: the caller
// makes its round durable another way (its own fsync). Not sticky.
var ErrJournalFull = errors.New("journal full")

// JournalOptions configure OpenJournal.
type JournalOptions struct {
	FS        vfs.FS
	Dir       string // <log dir>/journal, created if absent
	FileBytes int64  // size of each journal file; 0: DefaultJournalFileBytes
	// Syncer makes the file system durable for checkpoints (syncfs). The
	// journal does not close it.
	Syncer vfs.FileSystemSyncer
	Logger *slog.Logger
	// Checkpointed is called, after a checkpoint's syncfs, with the end
	// offset each log reached in the retired file (by name). The manager
	// moves those logs' recovery points and writes them out. An error
	// keeps the file from being reused (and is logged); the next
	// checkpoint tries again with the next file.
	Checkpointed func(ends map[string]int64) error
}

// Journal is a log directory's write-ahead journal. Safe for concurrent
// use.
type Journal struct {
	opts JournalOptions
}

// OpenJournal opens (creating if absent) the journal in opts.Dir. It
// does not replay it: the manager calls Replay once its logs are open,
// then Reset, before the first Append.
func OpenJournal(opts JournalOptions) (*Journal, error) {
	return nil, errors.New("journal: not built yet")
}

// Replay calls fn, in journal order, for every append record that is
// still valid: name and base as journaled, batches as the payload, and
// limit the offset from which a later fence drops this record's batches
// (math.MaxInt64: none; a record that a fence drops whole is not passed).
// It stops at fn's first error.
func (j *Journal) Replay(fn func(name string, base int64, batches []byte, limit int64) error) error {
	return errors.New("journal: not built yet")
}

// Reset forgets every record (the logs have made what Replay gave them
// durable): the active file gets a new generation and the other file's
// header is cleared, both durably.
func (j *Journal) Reset() error { return errors.New("journal: not built yet") }

// Append queues a copy of a round's batches for log name, base its first
// offset and end the offset after its last, and returns a ticket for
// Wait. ok is false when the record can never fit in a file, or the
// journal failed or is closed: the caller syncs its round another way.
func (j *Journal) Append(name string, base, end int64, batches [][]byte) (ticket uint64, ok bool) {
	return 0, false
}

// Wait returns once the record of ticket is durable in the journal,
// writing and syncing whatever is queued if no one else is (group
// commit). ErrJournalFull: the record was not written (see there).
func (j *Journal) Wait(ticket uint64) error { return errors.New("journal: not built yet") }

// Fence journals a fence for log name at from (< 0: every offset) and
// returns once it is durable.
func (j *Journal) Fence(name string, from int64) error {
	return errors.New("journal: not built yet")
}

// Checkpoint retires the active file if it holds records and the spare
// is ready, and checkpoints it in the background; it returns at once.
func (j *Journal) Checkpoint() {}

// Close waits for a running checkpoint and closes the files. Records
// queued and not waited for are dropped.
func (j *Journal) Close() error { return nil }
