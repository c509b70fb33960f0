package node

import (
	"context"
	"time"

	"github.com/sluicelog/sluice/internal/log"
)

// Descriptor budget. Segment files and client sockets share the process's
// descriptor limit (RLIMIT_NOFILE; Go raises the soft limit to one below
// the hard one at start-up, so a node gets what the operator allowed). Segment
// files can be closed and reopened on demand, sockets cannot, so the
// segment file cache gets what connections leave, and gives it back as
// they climb.

const (
	// fixedDescriptorReserve is kept for what is neither a segment file
	// nor a client socket: the metadata log, listeners, replica fetcher
	// and coordinator connections, index and checkpoint files opened for
	// a moment. At most a quarter of a small limit.
	fixedDescriptorReserve = 512
	// connectionStep rounds the connection count up before it enters the
	// budget, and the budget comes down only two steps below the count it
	// was set for (connectionBudget), so clients connecting and leaving
	// one by one do not close and reopen segment files each time.
	connectionStep = 64
	// minConnectionHeadroom is the least room kept for connections not
	// yet accepted; it grows to a quarter of the open ones, since clients
	// tend to arrive together (a consumer group starting, a producer
	// fleet reconnecting) faster than the budget follows them.
	minConnectionHeadroom = 256
	// descriptorShortageMemory is how long the descriptors given back
	// after a failed accept stay out of the segment file budget: the
	// files or sockets the budget did not count may still be there, and
	// growing back at once would fail the next accept again.
	descriptorShortageMemory = time.Minute
	// minSegmentFilesInShortage is as far as failed accepts bring the
	// segment file bounds down (both kinds together): with one file of
	// each kind, every append of a partition written after another's
	// reopened its file for the whole minute. The floor is a trade: up
	// to this many idle files stay open that the failed accept cannot
	// have (a segment open short of descriptors sheds them, log.sheddingFS;
	// an accept does not), and where the budget leaves this many files or
	// fewer (a limit of 512 with no client, 1,024 with 384 connections)
	// failed accepts close none: the accept loop's backoff (netserver),
	// not this budget, keeps it from spinning then. Connections, which cannot be closed, may
	// still take the bounds lower.
	minSegmentFilesInShortage = 128
)

// segmentFileBudget splits a descriptor limit between segment files and
// everything else, given the client connections open now and the
// descriptors failed accepts found missing (shortfall, see
// shortfallAfterFailedAccept):
//
//	reserve = min(512, limit/4) + connections + max(256, connections/4)
//	files   = max(limit - reserve - shortfall, min(limit - reserve, 128))
//	sealed  = min(log.DefaultOpenSealedSegments, files/8)
//	active  = files - sealed
//
// with connections rounded up to a multiple of 64, and each bound at
// least 1 (past the limit, a segment open that finds no descriptor closes
// idle files and tries again). The shortfall takes the files down to 128
// at most (minSegmentFilesInShortage); connections can take them lower. Sealed files stay capped because each
// holds its indexes in memory; an idle active file is a descriptor only,
// so active files get the rest, and 10,000 partitions keep their active
// files open under a limit of 20,000 while few clients are connected.
// Zero (an unknown limit) keeps the log package's defaults.
func segmentFileBudget(limit, connections, shortfall int) (sealed, active int) {
	if limit <= 0 {
		return 0, 0
	}
	connections = roundConnections(connections)
	reserve := min(fixedDescriptorReserve, limit/4) + connections + max(minConnectionHeadroom, connections/4)
	files := max(limit-reserve, 0)
	files = max(files-max(shortfall, 0), min(files, minSegmentFilesInShortage))
	sealed = max(min(log.DefaultOpenSealedSegments, files/8), 1)
	active = max(files-sealed, 1)
	return sealed, active
}

// roundConnections rounds a connection count up to a multiple of
// connectionStep.
func roundConnections(n int) int {
	return (max(n, 0) + connectionStep - 1) / connectionStep * connectionStep
}

// connectionBudget is the connection count the segment file bounds are
// computed for: a multiple of connectionStep at or above the count open.
// It rises as soon as connections pass it, and comes down only once they
// are two steps below it: with one threshold, a count going back and forth
// across a multiple of the step (short-lived clients, a health check)
// closed a step's worth of idle segment files, fsyncing the unsynced
// ones, on every crossing, and let them be reopened on the next.
type connectionBudget struct{ connections int }

// fit takes the connections open now and says whether the budget moved.
func (b *connectionBudget) fit(connections int) bool {
	rounded := roundConnections(connections)
	if rounded > b.connections || rounded+connectionStep < b.connections {
		b.connections = rounded
		return true
	}
	return false
}

// shortfallAfterFailedAccept is the shortfall to budget with once an
// accept failed for want of descriptors: the process used all it may,
// so the budget counted too few for what is not a segment file (a burst
// of sockets, files opened for a moment, another listener's clients).
// Lowering the bounds by a step would free nothing when the cache holds
// fewer files than its bounds, so they come down to a step below the
// segment files open now, which closes up to a step of idle ones at once
// and again at each failed accept, until the accept gets a descriptor.
func shortfallAfterFailedAccept(limit, connections, shortfall, openFiles int) int {
	sealed, active := segmentFileBudget(limit, connections, shortfall)
	return min(shortfall+max(sealed+active-openFiles, 0)+connectionStep, limit)
}

// segmentFiles is what fitSegmentFiles sizes: the log manager's file
// cache.
type segmentFiles interface {
	OpenFiles() int
	OpenActiveFiles() int
	SetOpenSegmentLimits(sealed, active int)
}

// fitSegmentFiles keeps the file cache's bounds at segmentFileBudget for
// the connections open (as connectionBudget rounds them), each time
// changed reports that they changed: growing the bounds as clients leave
// and closing idle segment files as they arrive, before sockets run
// short. Each time shortage reports a failed accept it lowers them below
// the files open (shortfallAfterFailedAccept), for forget without
// another one. It runs on its own goroutine because shrinking may fsync
// idle files written without a sync.
func fitSegmentFiles(ctx context.Context, limit int, changed, shortage <-chan struct{}, forget time.Duration, connections func() int, files segmentFiles) {
	if limit <= 0 {
		return
	}
	var budget connectionBudget // the bounds in force were set for none
	shortfall := 0
	remember := time.NewTimer(forget)
	remember.Stop()
	defer remember.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
			if !budget.fit(connections()) {
				continue
			}
		case <-shortage:
			budget.fit(connections())
			shortfall = shortfallAfterFailedAccept(limit, budget.connections, shortfall, files.OpenFiles()+files.OpenActiveFiles())
			remember.Reset(forget)
		case <-remember.C:
			budget.fit(connections())
			shortfall = 0
		}
		files.SetOpenSegmentLimits(segmentFileBudget(limit, budget.connections, shortfall))
	}
}
