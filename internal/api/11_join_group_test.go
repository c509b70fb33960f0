package api

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/coord"
)

// groupOutcome is a request answered on another goroutine.
type groupOutcome[R kmsg.Response] struct {
	resp R
	err  error
}

// groupAsync sends req on a new goroutine: JoinGroup and SyncGroup block
// until their phase completes.
func groupAsync[R kmsg.Response](h *harness, req kmsg.Request) <-chan groupOutcome[R] {
	out := make(chan groupOutcome[R], 1)
	go func() {
		resp, err := groupDo(h, req)
		if err != nil {
			out <- groupOutcome[R]{err: err}
			return
		}
		out <- groupOutcome[R]{resp: resp.(R)}
	}()
	return out
}

func groupAwait[R kmsg.Response](t *testing.T, what string, c <-chan groupOutcome[R]) R {
	t.Helper()
	select {
	case o := <-c:
		if o.err != nil {
			t.Fatalf("%s: %v", what, o.err)
		}
		return o.resp
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no response", what)
		var zero R
		return zero
	}
}

// groupJoinNew joins a new member at v4+: the first join gets
// MEMBER_ID_REQUIRED with the id to use (KIP-394), the second completes
// (the group must have no other members waiting to rejoin).
func groupJoinNew(t *testing.T, h *harness, version int16, group string) *kmsg.JoinGroupResponse {
	t.Helper()
	first := groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(version, group, "", []byte("meta")))
	groupWantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)
	if first.MemberID == "" || first.Generation != -1 {
		t.Fatalf("MEMBER_ID_REQUIRED with member id %q, generation %d", first.MemberID, first.Generation)
	}
	resp := groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(version, group, first.MemberID, []byte("meta")))
	groupWantCode(t, "second join", resp.ErrorCode, nil)
	if resp.MemberID != first.MemberID {
		t.Fatalf("joined as %q, assigned %q", resp.MemberID, first.MemberID)
	}
	return resp
}

// A two-member group: join, sync, heartbeat, a second member's join makes
// the first rejoin, both sync, commits and heartbeats are checked against
// the generation, and the members leave. Old versions (kafka-python's
// JoinGroup v2, kafka-go's SyncGroup/Heartbeat/LeaveGroup v0) and new ones
// are mixed in one group.
// long: one scenario driven step by step; splitting it hides the order.
func TestGroupJoinSyncHeartbeatLeaveTwoMembers(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	const group = "two"
	groupCreateTopic(t, h, "orders", 2)
	groupWaitCoordinator(t, h, group)

	// Member 1 alone: generation 1, it leads.
	j1 := groupJoinNew(t, h, 9, group)
	m1 := j1.MemberID
	if j1.Generation != 1 || j1.LeaderID != m1 || len(j1.Members) != 1 || j1.Protocol == nil || *j1.Protocol != "range" ||
		j1.ProtocolType == nil || *j1.ProtocolType != "consumer" {
		t.Fatalf("first join %+v", j1)
	}
	s1 := groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(5, group, 1, m1, map[string]string{m1: "all"}))
	groupWantCode(t, "sync 1", s1.ErrorCode, nil)
	if string(s1.MemberAssignment) != "all" || s1.Protocol == nil || *s1.Protocol != "range" {
		t.Fatalf("sync 1 %+v", s1)
	}
	groupWantCode(t, "heartbeat gen 1", groupHeartbeat(t, h, 4, group, 1, m1), nil)

	// Member 2 joins with v2 (no member id needed): the group rebalances
	// and waits for member 1, which learns it from its heartbeat.
	join2 := groupAsync[*kmsg.JoinGroupResponse](h, groupJoinRequest(2, group, "", []byte("meta2")))
	groupEventually(t, "member 1 sees the rebalance", func() error {
		if code := groupHeartbeat(t, h, 0, group, 1, m1); code != kerr.RebalanceInProgress.Code {
			return fmt.Errorf("heartbeat: %v", kerr.ErrorForCode(code))
		}
		return nil
	})
	if code := groupHeartbeat(t, h, 1, group, 1, m1); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %v", kerr.ErrorForCode(code))
	}
	j1b := groupAwait(t, "member 1 rejoin", groupAsync[*kmsg.JoinGroupResponse](h, groupJoinRequest(5, group, m1, []byte("meta"))))
	j2 := groupAwait(t, "member 2 join", join2)
	groupWantCode(t, "rejoin 1", j1b.ErrorCode, nil)
	groupWantCode(t, "join 2", j2.ErrorCode, nil)
	m2 := j2.MemberID
	if j1b.Generation != 2 || j2.Generation != 2 || j1b.LeaderID != j2.LeaderID || m2 == "" || m2 == m1 {
		t.Fatalf("generation 2 joins: %+v %+v", j1b, j2)
	}
	leader, follower := j1b, j2
	if j2.LeaderID == m2 {
		leader, follower = j2, j1b
	}
	if len(leader.Members) != 2 || len(follower.Members) != 0 {
		t.Fatalf("leader sees %d members, follower %d", len(leader.Members), len(follower.Members))
	}
	for _, m := range leader.Members {
		if want := map[string]string{m1: "meta", m2: "meta2"}[m.MemberID]; string(m.ProtocolMetadata) != want {
			t.Fatalf("member %s metadata %q, want %q", m.MemberID, m.ProtocolMetadata, want)
		}
	}

	// Between join and sync the group is CompletingRebalance: a member's
	// commit is refused until the assignment is out.
	commit := groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(2, group, 2, m1, "orders", 5))
	groupWantCode(t, "commit while completing rebalance", commit.Topics[0].Partitions[0].ErrorCode, kerr.RebalanceInProgress)

	// The follower's sync (v0, kafka-go) waits for the leader's.
	followerSync := groupAsync[*kmsg.SyncGroupResponse](h, groupSyncRequest(0, group, 2, follower.MemberID, nil))
	assignment := map[string]string{m1: "p0", m2: "p1"}
	ls := groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(3, group, 2, leader.MemberID, assignment))
	fs := groupAwait(t, "follower sync", followerSync)
	groupWantCode(t, "leader sync", ls.ErrorCode, nil)
	groupWantCode(t, "follower sync", fs.ErrorCode, nil)
	if string(ls.MemberAssignment) != assignment[leader.MemberID] || string(fs.MemberAssignment) != assignment[follower.MemberID] {
		t.Fatalf("assignments %q %q", ls.MemberAssignment, fs.MemberAssignment)
	}

	// Stable: heartbeats of generation 2 pass, stale or unknown ones fail.
	groupWantCode(t, "heartbeat m1", groupHeartbeat(t, h, 0, group, 2, m1), nil)
	groupWantCode(t, "heartbeat m2", groupHeartbeat(t, h, 4, group, 2, m2), nil)
	groupWantCode(t, "stale heartbeat", groupHeartbeat(t, h, 2, group, 1, m1), kerr.IllegalGeneration)
	groupWantCode(t, "unknown member heartbeat", groupHeartbeat(t, h, 2, group, 2, "nobody"), kerr.UnknownMemberID)
	groupWantCode(t, "stale sync", groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(1, group, 1, m1, nil)).ErrorCode,
		kerr.IllegalGeneration)

	// Commits are checked against the generation.
	commit = groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(2, group, 2, m1, "orders", 5, 6))
	if codes := groupCommitCodes(commit); len(codes) != 2 || codes[0] != 0 || codes[1] != 0 {
		t.Fatalf("commit codes %v", codes)
	}
	commit = groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(8, group, 1, m1, "orders", 7))
	groupWantCode(t, "stale commit", commit.Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)
	commit = groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(8, group, 2, "nobody", "orders", 7))
	groupWantCode(t, "unknown member commit", commit.Topics[0].Partitions[0].ErrorCode, kerr.UnknownMemberID)
	commit = groupMust[*kmsg.OffsetCommitResponse](t, h, groupCommitRequest(2, group, -1, "", "orders", 7))
	groupWantCode(t, "simple commit into a group with members", commit.Topics[0].Partitions[0].ErrorCode, kerr.UnknownMemberID)

	// Member 2 leaves (v0, kafka-go); member 1 rejoins alone.
	lreq := kmsg.NewPtrLeaveGroupRequest()
	lreq.Version, lreq.Group, lreq.MemberID = 0, group, m2
	groupWantCode(t, "leave m2", groupMust[*kmsg.LeaveGroupResponse](t, h, lreq).ErrorCode, nil)
	groupWantCode(t, "heartbeat after leave", groupHeartbeat(t, h, 0, group, 2, m1), kerr.RebalanceInProgress)
	j1c := groupAwait(t, "member 1 rejoins alone", groupAsync[*kmsg.JoinGroupResponse](h, groupJoinRequest(7, group, m1, []byte("meta"))))
	groupWantCode(t, "rejoin alone", j1c.ErrorCode, nil)
	if j1c.Generation != 3 || j1c.LeaderID != m1 || len(j1c.Members) != 1 {
		t.Fatalf("generation 3 join %+v", j1c)
	}

	// Member 1 leaves in a batch (v3+) with an unknown member beside it.
	lreq = kmsg.NewPtrLeaveGroupRequest()
	lreq.Version, lreq.Group = 5, group
	lreq.Members = []kmsg.LeaveGroupRequestMember{{MemberID: m1, Reason: kmsg.StringPtr("done")}, {MemberID: "ghost"}}
	lresp := groupMust[*kmsg.LeaveGroupResponse](t, h, lreq)
	groupWantCode(t, "batched leave", lresp.ErrorCode, nil)
	if len(lresp.Members) != 2 || lresp.Members[0].MemberID != m1 || lresp.Members[0].ErrorCode != 0 ||
		lresp.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("batched leave members %+v", lresp.Members)
	}
	d := groupDescribe(t, h, 5, group)[0]
	if d.State != coord.StateEmpty || len(d.Members) != 0 {
		t.Fatalf("after everyone left: %+v", d)
	}
}

func TestGroupJoinErrors(t *testing.T) {
	cfg := groupTestConfig()
	cfg.GroupMaxSize = 1
	cfg.MaxMemberMetadataBytes = 64 << 10
	h := newGroupHarness(t, cfg)
	groupWaitCoordinator(t, h, "errs")

	// An unknown member id (not a first join) is refused.
	resp := groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(5, "errs", "made-up", nil))
	groupWantCode(t, "unknown member", resp.ErrorCode, kerr.UnknownMemberID)
	if resp.Generation != -1 || resp.MemberID != "made-up" || resp.LeaderID != "" || len(resp.Members) != 0 {
		t.Fatalf("error response %+v", resp)
	}
	// No protocol type, or no protocols: INCONSISTENT_GROUP_PROTOCOL.
	req := groupJoinRequest(5, "errs", "", nil)
	req.ProtocolType = ""
	groupWantCode(t, "empty protocol type", groupMust[*kmsg.JoinGroupResponse](t, h, req).ErrorCode, kerr.InconsistentGroupProtocol)
	req = groupJoinRequest(5, "errs", "", nil)
	req.Protocols = nil
	groupWantCode(t, "no protocols", groupMust[*kmsg.JoinGroupResponse](t, h, req).ErrorCode, kerr.InconsistentGroupProtocol)
	// Session timeout outside group.min/max.session.timeout.ms.
	req = groupJoinRequest(5, "errs", "", nil)
	req.SessionTimeoutMillis = 1
	groupWantCode(t, "tiny session timeout", groupMust[*kmsg.JoinGroupResponse](t, h, req).ErrorCode, kerr.InvalidSessionTimeout)
	// An empty group id.
	groupWantCode(t, "empty group id", groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(5, "", "", nil)).ErrorCode,
		kerr.InvalidGroupID)

	// A consumer group refuses a member of another protocol type.
	groupJoinNew(t, h, 4, "errs")
	req = groupJoinRequest(5, "errs", "", nil)
	req.ProtocolType = "connect"
	groupWantCode(t, "other protocol type", groupMust[*kmsg.JoinGroupResponse](t, h, req).ErrorCode, kerr.InconsistentGroupProtocol)
	// group.max.size 1: a second member does not fit.
	second := groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(3, "errs", "", nil))
	groupWantCode(t, "second member of a full group", second.ErrorCode, kerr.GroupMaxSizeReached)
}

// An oversized member metadata is refused with a clear error, and serving
// it allocates in proportion to the request, not more.
func TestGroupJoinOversizedMetadataBoundedMemory(t *testing.T) {
	cfg := groupTestConfig()
	cfg.MaxMemberMetadataBytes = 64 << 10
	h := newGroupHarness(t, cfg)
	groupWaitCoordinator(t, h, "big")

	metadata := bytes.Repeat([]byte{'x'}, 4<<20)
	req := groupJoinRequest(9, "big", "", metadata)
	req.Protocols = append(req.Protocols, kmsg.JoinGroupRequestProtocol{Name: "roundrobin", Metadata: metadata})
	id, frame := groupFrame(req)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	out, err := groupServe(h, req, id, frame)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	resp := out.(*kmsg.JoinGroupResponse)
	groupWantCode(t, "oversized metadata", resp.ErrorCode, kerr.InvalidRequest)
	// Decoding copies the metadata once; the coordinator must refuse it
	// without another copy per protocol or member.
	alloc := int64(after.TotalAlloc - before.TotalAlloc)
	t.Logf("serving a %d-byte join allocated %d bytes", len(frame), alloc)
	if alloc > 2*int64(len(frame)) {
		t.Fatalf("serving a %d-byte join allocated %d bytes", len(frame), alloc)
	}
	d := groupDescribe(t, h, 5, "big")[0]
	if len(d.Members) != 0 {
		t.Fatalf("the refused member is in the group: %+v", d)
	}
}

// The handler hands the coordinator what each version means: v0's
// rebalance timeout is its session timeout, v4+ require a known member id,
// v9 may skip assignment; the client id and host are passed for
// DescribeGroups.
func TestGroupJoinConvertsVersions(t *testing.T) {
	f := &fakeGroups{err: coord.ErrMemberIDRequired, joinRes: coord.JoinResult{MemberID: "assigned"}}
	h := newFakeGroupHarness(t, f)
	req := groupJoinRequest(0, "g", "", nil)
	req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 7000, 99999
	groupMust[*kmsg.JoinGroupResponse](t, h, req)
	if got := f.joins[0]; got.RebalanceTimeoutMs != 7000 || got.RequireKnownMemberID || got.SupportsSkipAssignment ||
		got.ClientID != "client" || got.ClientHost != "/127.0.0.1" || got.ProtocolType != "consumer" || len(got.Protocols) != 1 {
		t.Fatalf("v0 join as %+v", got)
	}
	req = groupJoinRequest(9, "g", "", nil)
	req.InstanceID, req.Reason = kmsg.StringPtr("static-1"), kmsg.StringPtr("why")
	resp := groupMust[*kmsg.JoinGroupResponse](t, h, req)
	groupWantCode(t, "v9", resp.ErrorCode, kerr.MemberIDRequired)
	if resp.MemberID != "assigned" || resp.Protocol != nil || resp.ProtocolType != nil {
		t.Fatalf("MEMBER_ID_REQUIRED response %+v", resp)
	}
	if got := f.joins[1]; got.RebalanceTimeoutMs != 10000 || !got.RequireKnownMemberID || !got.SupportsSkipAssignment ||
		got.GroupInstanceID != "static-1" || got.Reason != "why" {
		t.Fatalf("v9 join as %+v", got)
	}
	// Before v7 the protocol name is a non-null string even on errors.
	f.err = coord.ErrRebalanceInProgress
	resp = groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(6, "g", "m", nil))
	groupWantCode(t, "v6", resp.ErrorCode, kerr.RebalanceInProgress)
	if resp.MemberID != "m" || resp.Protocol == nil || *resp.Protocol != "" {
		t.Fatalf("v6 error response %+v", resp)
	}
}

// kmsg decodes byte fields as slices of the frame, whose buffer the
// network server reuses after the request: the group must keep its own
// copies of the members' metadata and assignments.
func TestGroupJoinAndSyncDoNotKeepTheFrame(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupWaitCoordinator(t, h, "frames")
	first := groupMust[*kmsg.JoinGroupResponse](t, h, groupJoinRequest(5, "frames", "", nil))
	groupWantCode(t, "first join", first.ErrorCode, kerr.MemberIDRequired)

	serveAndScribble := func(req kmsg.Request) kmsg.Response {
		t.Helper()
		id, frame := groupFrame(req)
		resp, err := groupServe(h, req, id, frame)
		if err != nil {
			t.Fatal(err)
		}
		for i := range frame {
			frame[i] = 'Z'
		}
		return resp
	}
	join := serveAndScribble(groupJoinRequest(5, "frames", first.MemberID, []byte("subscription"))).(*kmsg.JoinGroupResponse)
	groupWantCode(t, "join", join.ErrorCode, nil)
	sync := serveAndScribble(groupSyncRequest(5, "frames", join.Generation, join.MemberID, map[string]string{join.MemberID: "assignment"}))
	groupWantCode(t, "sync", sync.(*kmsg.SyncGroupResponse).ErrorCode, nil)

	m := groupDescribe(t, h, 5, "frames")[0].Members[0]
	if string(m.ProtocolMetadata) != "subscription" || string(m.MemberAssignment) != "assignment" {
		t.Fatalf("the group kept the frame: metadata %q, assignment %q", m.ProtocolMetadata, m.MemberAssignment)
	}
}

func TestGroupDetach(t *testing.T) {
	in := [][]byte{[]byte("ab"), nil, []byte("cde")}
	out := groupDetach(in)
	in[0][0], in[2][0] = 'X', 'X'
	if string(out[0]) != "ab" || len(out[1]) != 0 || string(out[2]) != "cde" {
		t.Fatalf("detached %q", out)
	}
	if out = append(out[:0:0], out...); cap(out[0]) != 2 {
		t.Fatal("a detached part may grow into the next")
	}
}

// A JoinGroup waiting for other members returns when its connection goes
// away (the request ctx ends), not at the rebalance timeout.
func TestGroupJoinHonoursRequestContext(t *testing.T) {
	h := newGroupHarness(t, groupTestConfig())
	groupWaitCoordinator(t, h, "ctx")
	j := groupJoinNew(t, h, 5, "ctx")
	groupMust[*kmsg.SyncGroupResponse](t, h, groupSyncRequest(5, "ctx", j.Generation, j.MemberID, nil))

	// Member 2's join waits for member 1, which never rejoins.
	req := groupJoinRequest(3, "ctx", "", nil)
	req.RebalanceTimeoutMillis = 60000
	_, frame := groupFrame(req)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	out, err := h.server.Serve(ctx, "127.0.0.1:4242", frame)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		out.Release()
	}
	if waited := time.Since(start); waited > 20*time.Second {
		t.Fatalf("join returned %v after its ctx ended", waited)
	}
}
