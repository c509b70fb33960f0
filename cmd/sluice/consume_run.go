package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runConsume checks the command line and the topics, then prints records
// until -n, -e's end, Ctrl-C or an error, committing in group mode.
func runConsume(cmd *cobra.Command, e *clientEnv, o *consumeOptions, topics []string) error {
	p, err := planConsume(cmd, e, o, topics)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if err := prepareConsume(ctx, e, p, o.partitions); err != nil {
		return err
	}
	// Polling stops when the user interrupts or, with -e, when the last
	// partition reaches its end, which a group rebalance can bring about
	// while a poll waits.
	pollCtx, stopPolling := context.WithCancel(ctx)
	defer stopPolling()
	tracker := newEndTracker(p, stopPolling)
	cl, err := e.client(ctx, consumerOptions(p, tracker)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	printer := newRecordPrinter(cmd.OutOrStdout(), p.asJSON, p.format, p.binary)
	loopErr := pollAndPrint(ctx, pollCtx, cl, p, tracker, printer, cmd.ErrOrStderr())
	if p.group == "" {
		return loopErr
	}
	// Commit what was printed even after an error or Ctrl-C (which has
	// cancelled ctx), so the group resumes after the last record shown.
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.timeout)
	defer cancel()
	if err := cl.CommitMarkedOffsets(commitCtx); err != nil && loopErr == nil {
		loopErr = fmt.Errorf("group %q: committing offsets: %w", p.group, err)
	}
	return loopErr
}

// prepareConsume checks the topics exist and, where needed, resolves where
// each partition starts and ends.
func prepareConsume(ctx context.Context, e *clientEnv, p *consumePlan, only []int32) error {
	adm, err := e.admin(ctx)
	if err != nil {
		return err
	}
	defer adm.Close()
	rctx, cancel := e.requestContext(ctx)
	defer cancel()
	if err := checkConsumeTopics(rctx, adm, p, only); err != nil {
		return err
	}
	// A group member starts where the group committed, which the client
	// looks up itself; only -e needs to know that position in advance.
	if p.group != "" && !p.exitAtEnd {
		return nil
	}
	return resolveOffsets(rctx, adm, p)
}

// consumerOptions configures the consuming client: exact start offsets
// without a group, the group and its callbacks with one.
func consumerOptions(p *consumePlan, tracker *endTracker) []kgo.Opt {
	// Without a group the reset offset is only a fallback: the exact start
	// listed a moment ago can fall out of the log (retention or a trim in
	// between), and the client then resets to where -o would have started.
	reset := kgo.ConsumeResetOffset(p.spec.kgoOffset())
	if p.group == "" {
		assign := map[string]map[int32]kgo.Offset{}
		for _, tp := range p.partitions {
			if assign[tp.topic] == nil {
				assign[tp.topic] = map[int32]kgo.Offset{}
			}
			assign[tp.topic][tp.partition] = kgo.NewOffset().At(p.start[tp])
		}
		return []kgo.Opt{kgo.ConsumePartitions(assign), reset}
	}
	return []kgo.Opt{
		kgo.ConsumerGroup(p.group),
		kgo.ConsumeTopics(p.topics...),
		reset,
		// Only printed records are committed: a poll may return more
		// than -n lets us print, and -e skips records past the end.
		kgo.AutoCommitMarks(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, added map[string][]int32) {
			tracker.assign(added)
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
			// Replacing the default revoke callback drops its commit;
			// commit here so the next owner starts after what we printed.
			_ = cl.CommitMarkedOffsets(ctx)
			tracker.revoke(revoked)
		}),
		// Lost partitions (our session expired) are not committed, unlike
		// revoked ones: another member may own them already, and a late
		// commit from us would move its position back.
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
			tracker.revoke(lost)
		}),
	}
}

// pollAndPrint is the consume loop. It returns nil when -n records were
// printed, when -e's end is reached, or when ctx ends (Ctrl-C).
func pollAndPrint(ctx, pollCtx context.Context, cl *kgo.Client, p *consumePlan, tracker *endTracker, printer *recordPrinter, stderr io.Writer) error {
	printed := 0
	for {
		if p.exitAtEnd && tracker.reachedEnd() {
			return nil
		}
		// Ask for no more than -n still allows, so records that will never
		// be printed are not buffered (and, in a group, never marked).
		limit := 0 // no limit
		if p.num > 0 {
			limit = p.num - printed
		}
		fetches := cl.PollRecords(pollCtx, limit)
		for _, r := range fetches.Records() {
			if !tracker.consumed(r) {
				continue
			}
			if err := printer.print(r); err != nil {
				return err
			}
			if p.group != "" {
				cl.MarkCommitRecords(r)
			}
			if printed++; printed == p.num {
				break
			}
		}
		if err := printer.flush(); err != nil {
			return err
		}
		switch {
		case printed == p.num && p.num > 0:
			return nil
		case ctx.Err() != nil:
			return nil
		case p.exitAtEnd && tracker.reachedEnd():
			return nil
		}
		if err := fetchError(fetches, p, stderr); err != nil {
			return err
		}
	}
}

// fetchError returns the first error in fetches that should end consume,
// naming its partition. Data loss (the log was truncated below what we
// read) is only warned about: the client has already moved on.
func fetchError(fetches kgo.Fetches, p *consumePlan, stderr io.Writer) error {
	for _, fe := range fetches.Errors() {
		var dataLoss *kgo.ErrDataLoss
		switch {
		case errors.Is(fe.Err, context.Canceled), errors.Is(fe.Err, context.DeadlineExceeded),
			errors.Is(fe.Err, kgo.ErrClientClosed):
			continue
		case errors.As(fe.Err, &dataLoss):
			fmt.Fprintf(stderr, "sluice: warning: %v\n", fe.Err)
			continue
		// An error that names no partition comes from the group (join,
		// sync, heartbeat) or from the client itself.
		case fe.Topic == "" && p.group != "":
			return fmt.Errorf("group %q: %w", p.group, fe.Err)
		case fe.Topic == "":
			return fe.Err
		}
		return fmt.Errorf("%s: %w", topicPartition{fe.Topic, fe.Partition}, fe.Err)
	}
	return nil
}

// endTracker follows, for -e, how far each partition has been read against
// the high watermark it had when consume started. Group callbacks call it
// from the client's goroutines, hence the mutex.
type endTracker struct {
	enabled bool // -e
	group   bool
	end     map[topicPartition]int64
	reached func() // wakes a waiting poll once every partition is read

	mu           sync.Mutex
	position     map[topicPartition]int64 // the next offset to print
	assigned     map[topicPartition]bool
	everAssigned bool
}

func newEndTracker(p *consumePlan, reached func()) *endTracker {
	t := &endTracker{
		enabled:  p.exitAtEnd,
		group:    p.group != "",
		end:      p.end,
		reached:  reached,
		position: map[topicPartition]int64{},
		assigned: map[topicPartition]bool{},
	}
	for tp, at := range p.start {
		t.position[tp] = at
	}
	if !t.group {
		for _, tp := range p.partitions {
			t.assigned[tp] = true
		}
		t.everAssigned = true
	}
	return t
}

// consumed records that r was read and reports whether to print it: with
// -e, a record written after consume started (at or past the end it
// recorded) is not.
func (t *endTracker) consumed(r *kgo.Record) bool {
	if !t.enabled {
		return true
	}
	tp := topicPartition{r.Topic, r.Partition}
	t.mu.Lock()
	defer t.mu.Unlock()
	// -e reads the log as it was at the start: without this bound a busy
	// topic would keep consume running forever.
	if end, ok := t.end[tp]; !ok || r.Offset >= end {
		return false
	}
	t.position[tp] = r.Offset + 1
	return true
}

// reachedEnd reports whether every assigned partition has been read to its
// end. A group member that has not been assigned yet has not.
func (t *endTracker) reachedEnd() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reachedEndLocked()
}

func (t *endTracker) reachedEndLocked() bool {
	if !t.everAssigned {
		return false
	}
	for tp := range t.assigned {
		// A partition created after consume started has no recorded end
		// (zero): it counts as read.
		if t.position[tp] < t.end[tp] {
			return false
		}
	}
	return true
}

// assign records partitions the group gave this member. It may end the
// run at once: a member assigned only partitions that were already read to
// their end has nothing left to wait for.
func (t *endTracker) assign(added map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, parts := range added {
		for _, part := range parts {
			t.assigned[topicPartition{topic, part}] = true
		}
	}
	t.everAssigned = true
	if t.enabled && t.reachedEndLocked() {
		t.reached()
	}
}

// revoke forgets partitions taken away in a rebalance; their position is
// kept, since the group may hand them back.
func (t *endTracker) revoke(removed map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, parts := range removed {
		for _, part := range parts {
			delete(t.assigned, topicPartition{topic, part})
		}
	}
	// An assignment emptied by a revoke is usually mid-rebalance, about to
	// be refilled; only the assign callback may end on an empty one (a
	// member the group gave nothing to).
	if t.enabled && len(t.assigned) > 0 && t.reachedEndLocked() {
		t.reached()
	}
}
