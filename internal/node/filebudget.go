package node

import (
	"context"

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
)

// segmentFileBudget splits a descriptor limit between segment files and
// everything else, given the client connections open now:
//
//	reserve = min(512, limit/4) + connections + max(256, connections/4)
//	sealed  = min(log.DefaultOpenSealedSegments, (limit-reserve)/8)
//	active  = limit - reserve - sealed
//
// with connections rounded up to a multiple of 64, and each bound at
// least 1 (past the limit, a segment open that finds no descriptor closes
// idle files and tries again). Sealed files stay capped because each
// holds its indexes in memory; an idle active file is a descriptor only,
// so active files get the rest, and 10,000 partitions keep their active
// files open under a limit of 20,000 while few clients are connected.
// Zero (an unknown limit) keeps the log package's defaults.
func segmentFileBudget(limit, connections int) (sealed, active int) {
	if limit <= 0 {
		return 0, 0
	}
	connections = roundConnections(connections)
	reserve := min(fixedDescriptorReserve, limit/4) + connections + max(minConnectionHeadroom, connections/4)
	files := max(limit-reserve, 0)
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

// fitSegmentFiles keeps the file cache's bounds at segmentFileBudget for
// the connections open (as connectionBudget rounds them), each time
// changed reports that they changed: growing the bounds as clients leave
// and closing idle segment files as they arrive, before sockets run
// short. It runs on its own goroutine because shrinking may fsync idle
// files written without a sync.
func fitSegmentFiles(ctx context.Context, limit int, changed <-chan struct{}, connections func() int, logs *log.Manager) {
	if limit <= 0 {
		return
	}
	var budget connectionBudget // the bounds in force were set for none
	for {
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		if budget.fit(connections()) {
			logs.SetOpenSegmentLimits(segmentFileBudget(limit, budget.connections))
		}
	}
}
