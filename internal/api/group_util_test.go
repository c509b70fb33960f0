package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicelog/sluice/internal/coord"
	"github.com/sluicelog/sluice/internal/partition"
)

// fakeGroups answers the group handlers without a coordinator, so the
// per-version shapes of errors can be checked exactly. Each call records its
// request; a nil function answers the zero result.
type fakeGroups struct {
	err error // returned by every call that can fail, if set

	findNode  int32
	joins     []coord.JoinRequest
	joinRes   coord.JoinResult
	syncs     []coord.SyncRequest
	leaves    []coord.LeaveRequest
	leaveRes  coord.LeaveResult
	commits   []coord.CommitRequest
	fetches   []coord.FetchRequest
	fetchRes  func(coord.FetchRequest) (coord.FetchResult, error)
	describes []coord.GroupDescription
	deletes   [][]string
}

var _ Groups = (*fakeGroups)(nil)

func (f *fakeGroups) FindCoordinator(_ context.Context, groupID string) (int32, error) {
	return f.findNode, f.err
}

func (f *fakeGroups) Join(_ context.Context, req coord.JoinRequest) (coord.JoinResult, error) {
	f.joins = append(f.joins, req)
	return f.joinRes, f.err
}

func (f *fakeGroups) Sync(_ context.Context, req coord.SyncRequest) (coord.SyncResult, error) {
	f.syncs = append(f.syncs, req)
	return coord.SyncResult{}, f.err
}

func (f *fakeGroups) Heartbeat(context.Context, coord.HeartbeatRequest) error { return f.err }

func (f *fakeGroups) Leave(_ context.Context, req coord.LeaveRequest) (coord.LeaveResult, error) {
	f.leaves = append(f.leaves, req)
	return f.leaveRes, f.err
}

// CommitOffsets answers every partition with success unless f.err is set.
func (f *fakeGroups) CommitOffsets(_ context.Context, req coord.CommitRequest) (coord.CommitResult, error) {
	f.commits = append(f.commits, req)
	if f.err != nil {
		return coord.CommitResult{}, f.err
	}
	var res coord.CommitResult
	for _, t := range req.Topics {
		rt := coord.CommitTopicResult{Name: t.Name}
		for _, p := range t.Partitions {
			rt.Partitions = append(rt.Partitions, coord.CommitPartitionResult{Partition: p.Partition})
		}
		res.Topics = append(res.Topics, rt)
	}
	return res, nil
}

func (f *fakeGroups) FetchOffsets(_ context.Context, req coord.FetchRequest) (coord.FetchResult, error) {
	f.fetches = append(f.fetches, req)
	if f.fetchRes != nil {
		return f.fetchRes(req)
	}
	return coord.FetchResult{}, f.err
}

func (f *fakeGroups) DescribeGroups(_ context.Context, ids []string) []coord.GroupDescription {
	return f.describes
}

func (f *fakeGroups) ListGroups(context.Context, []string) ([]coord.GroupListing, error) {
	return nil, f.err
}

func (f *fakeGroups) DeleteGroups(_ context.Context, ids []string) []coord.DeleteGroupResult {
	f.deletes = append(f.deletes, ids)
	out := make([]coord.DeleteGroupResult, len(ids))
	for i, id := range ids {
		out[i] = coord.DeleteGroupResult{GroupID: id, Err: f.err}
	}
	return out
}

func (f *fakeGroups) DeleteOffsets(context.Context, coord.DeleteOffsetsRequest) (coord.DeleteOffsetsResult, error) {
	return coord.DeleteOffsetsResult{}, f.err
}

// newFakeGroupHarness is the harness with f as its coordinator.
func newFakeGroupHarness(t *testing.T, f *fakeGroups) *harness {
	t.Helper()
	h := newHarness(t, Config{})
	if f != nil {
		h.broker.Groups = f
	}
	return h
}

func TestGroupErrorCodeTranslatesStorageErrors(t *testing.T) {
	cases := []struct {
		err  error
		want *kerr.Error
	}{
		{nil, nil},
		{coord.ErrRebalanceInProgress, kerr.RebalanceInProgress},
		{fmt.Errorf("append: %w", partition.ErrNotLeader), kerr.NotCoordinator},
		{fmt.Errorf("%w: leadership moved: %w", coord.ErrNotCoordinator, partition.ErrNotLeader), kerr.NotCoordinator},
		{fmt.Errorf("join: %w", context.DeadlineExceeded), kerr.CoordinatorNotAvailable},
		{fmt.Errorf("append: %w", partition.ErrMessageTooLarge), kerr.UnknownServerError},
		{errNoGroupCoordinator, kerr.CoordinatorNotAvailable},
		{errors.New("something else"), kerr.UnknownServerError},
	}
	for _, c := range cases {
		want := int16(0)
		if c.want != nil {
			want = c.want.Code
		}
		if got := groupErrorCode(c.err); got != want {
			t.Errorf("groupErrorCode(%v) = %v, want %v", c.err, kerr.ErrorForCode(got), c.want)
		}
	}
}

func TestGroupClientHost(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:5555": "/127.0.0.1", "[::1]:9": "/::1", "weird": "/weird"} {
		if got := groupClientHost(in); got != want {
			t.Errorf("groupClientHost(%q) = %q, want %q", in, got, want)
		}
	}
}
