package api

// Helpers shared by the consumer-group handlers (OffsetCommit, OffsetFetch,
// FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup,
// DescribeGroups, ListGroups, DeleteGroups, OffsetDelete). The handlers
// translate between kmsg's per-version shapes and the coordinator's
// version-free requests; the group protocol itself lives in internal/coord.

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/metadata"
)

// Groups is what the group handlers need of the group coordinator
// (*coord.Coordinator satisfies it). Every method is safe for concurrent
// use; errors are coord's sentinels, possibly wrapped, or ctx's.
type Groups interface {
	// FindCoordinator is the node leading the group's partition of
	// __consumer_offsets.
	FindCoordinator(ctx context.Context, groupID string) (int32, error)
	Join(ctx context.Context, req coord.JoinRequest) (coord.JoinResult, error)
	Sync(ctx context.Context, req coord.SyncRequest) (coord.SyncResult, error)
	Heartbeat(ctx context.Context, req coord.HeartbeatRequest) error
	Leave(ctx context.Context, req coord.LeaveRequest) (coord.LeaveResult, error)
	CommitOffsets(ctx context.Context, req coord.CommitRequest) (coord.CommitResult, error)
	FetchOffsets(ctx context.Context, req coord.FetchRequest) (coord.FetchResult, error)
	DescribeGroups(ctx context.Context, groupIDs []string) []coord.GroupDescription
	ListGroups(ctx context.Context, statesFilter []string) ([]coord.GroupListing, error)
	DeleteGroups(ctx context.Context, groupIDs []string) []coord.DeleteGroupResult
	DeleteOffsets(ctx context.Context, req coord.DeleteOffsetsRequest) (coord.DeleteOffsetsResult, error)
}

var _ Groups = (*coord.Coordinator)(nil)

// errNoGroupCoordinator answers group requests on a broker started without
// a coordinator: retriable, so a client keeps looking rather than failing.
var errNoGroupCoordinator = fmt.Errorf("%w: this broker runs no group coordinator", coord.ErrCoordinatorNotAvailable)

// groups returns the broker's coordinator, or an error every group request
// answers when there is none.
func groups(b *Broker) (Groups, error) {
	if b.Groups == nil {
		return nil, errNoGroupCoordinator
	}
	return b.Groups, nil
}

// groupJoinSlack is added to a JoinGroup's rebalance timeout to bound how
// long its handler waits. The coordinator ends the join phase itself at the
// rebalance timeout (plus group.initial.rebalance.delay.ms for a group that
// was empty); this deadline only keeps a handler from waiting forever if
// that never happens, and must exceed any sensible initial delay.
const groupJoinSlack = 5 * time.Minute

// groupJoinContext bounds a JoinGroup by its rebalance timeout (the
// session timeout for v0, which has none) plus groupJoinSlack.
func groupJoinContext(ctx context.Context, rebalanceTimeoutMs int32) (context.Context, context.CancelFunc) {
	d := time.Duration(max(rebalanceTimeoutMs, 0)) * time.Millisecond
	return context.WithTimeout(ctx, d+groupJoinSlack)
}

// groupClientHost is the client's address as DescribeGroups shows it:
// Kafka prints the InetAddress, "/127.0.0.1", without the port.
func groupClientHost(clientAddr string) string {
	host, _, err := net.SplitHostPort(clientAddr)
	if err != nil {
		host = clientAddr
	}
	return "/" + host
}

// groupString is a nullable string's value, "" for null: the coordinator
// does not tell an absent group.instance.id or metadata from an empty one.
func groupString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// groupNullable is s as a nullable string, null for "".
func groupNullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// groupDetach copies parts out of the request frame, into one allocation.
// kmsg decodes byte fields as slices of the frame, and the network server
// reuses a frame's buffer once its request is served, while the
// coordinator keeps a member's protocol metadata and assignment for as
// long as the member lives.
func groupDetach(parts [][]byte) [][]byte {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	buf := make([]byte, 0, total)
	out := make([][]byte, len(parts))
	for i, p := range parts {
		start := len(buf)
		buf = append(buf, p...)
		out[i] = buf[start:len(buf):len(buf)]
	}
	return out
}

// groupPartitionKnown reports whether topic-partition exists in img, as
// OffsetCommit and OffsetDelete check before the coordinator sees them.
func groupPartitionKnown(img *metadata.Image, topic string, partition int32) bool {
	_, ok := img.Partition(topic, partition)
	return ok
}

// groupErrUnknownPartition is the error a commit or delete for a topic or
// partition missing from the metadata image gets.
func groupErrUnknownPartition(topic string, partition int32) error {
	return fmt.Errorf("%s-%d: %w", topic, partition, coord.ErrUnknownTopicOrPartition)
}

// groupAllOperations is the DescribeGroups authorized_operations bit field
// with no authorizer: every operation a group supports (READ 3, DELETE 6,
// DESCRIBE 8), as Kafka reports when no ACLs are configured.
const groupAllOperations int32 = 1<<3 | 1<<6 | 1<<8

// groupNoAuthorizedOperations is the bit field's "not requested" value.
const groupNoAuthorizedOperations int32 = -2147483648
