package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// TestE2EGroupAdmin drives the group admin APIs through kadm: simple
// (generation -1) commits, FetchOffsets, DescribeGroups, ListGroups with a
// state filter, Lag, DeleteGroups (refused while members are active),
// DeleteOffsets, and __consumer_offsets as an internal topic. The broker
// keeps Kafka's default initial rebalance delay here.
func TestE2EGroupAdmin(t *testing.T) {
	b := startBroker(t, withSet("offsets.topic.num.partitions=7"))
	adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)
	const topic, parts = "adm", 4
	createTopic(t, adm, topic, parts, nil)
	producePerPartition(t, b.Addr(), topic, "adm", parts, 10)

	checkSimpleCommits(t, ctx, adm, b.Addr(), topic)

	log := newGroupLog()
	spec := memberSpec{Addr: b.Addr(), Group: "adm-g", Topic: topic, Balancer: "range", Session: groupSession}
	m1 := startMember(t, log, "a", spec)
	m2 := startMember(t, log, "b", spec)
	wantAssignment(t, parts, "two members split 4 partitions", m1.ownedSet, m2.ownedSet)
	dg := waitGroupState(t, b.Addr(), "adm-g", "Stable", 2)
	checkDescribed(t, dg, topic, map[string]*member{"sluice-e2e-a": m1, "sluice-e2e-b": m2})
	checkListGroups(t, ctx, adm)
	checkLag(t, ctx, adm, topic, parts)
	checkDeletesRefused(t, ctx, adm, topic)

	// Once the members leave the group is Empty and can be deleted.
	m1.close(t)
	m2.close(t)
	waitGroupState(t, b.Addr(), "adm-g", "Empty", 0)
	checkDeleted(t, ctx, adm)
	checkOffsetsTopic(t, ctx, adm, 7)
	log.check(t)
}

// checkSimpleCommits: a consumer that only commits (generation -1, no
// member id), as Kafka allows, and OffsetFetch of what it committed and of
// a group that does not exist (no offsets, no error).
func checkSimpleCommits(t *testing.T, ctx context.Context, adm *kadm.Client, addr, topic string) {
	cr, err := adm.CommitOffsets(ctx, "simple-g", kadm.Offsets{topic: {
		0: {Topic: topic, Partition: 0, At: 3, LeaderEpoch: -1, Metadata: "simple"},
		1: {Topic: topic, Partition: 1, At: 7, LeaderEpoch: -1},
	}})
	if err != nil || cr.Error() != nil {
		t.Fatalf("simple CommitOffsets: %v %v", err, cr.Error())
	}
	wantCommitted(t, addr, "simple-g", topic, map[int32]int64{0: 3, 1: 7})
	fo, err := adm.FetchOffsets(ctx, "simple-g")
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	if o, _ := fo.Lookup(topic, 0); o.Metadata != "simple" {
		t.Errorf("commit metadata %q, want %q", o.Metadata, "simple")
	}
	for _, p := range []int32{2, 3} {
		if o, ok := fo.Lookup(topic, p); ok && o.At != -1 {
			t.Errorf("simple-g %s/%d never committed, FetchOffsets has %+v", topic, p, o)
		}
	}
	if fo, err := adm.FetchOffsets(ctx, "nobody"); err != nil || fo.Error() != nil {
		t.Errorf("FetchOffsets of an unknown group: %v %v, want no offsets and no error", err, fo.Error())
	} else {
		fo.Each(func(o kadm.OffsetResponse) {
			if o.At != -1 {
				t.Errorf("unknown group has a commit: %+v", o)
			}
		})
	}
}

// checkDescribed compares DescribeGroups' view of a stable range group
// with what its members' callbacks say they hold, by client id.
func checkDescribed(t *testing.T, dg kadm.DescribedGroup, topic string, byClient map[string]*member) {
	if dg.ProtocolType != "consumer" || dg.Protocol != "range" {
		t.Errorf("DescribeGroups: protocol type %q protocol %q, want consumer/range", dg.ProtocolType, dg.Protocol)
	}
	for _, dm := range dg.Members {
		m := byClient[dm.ClientID]
		if m == nil {
			t.Errorf("DescribeGroups: member %s with client id %q", dm.MemberID, dm.ClientID)
			continue
		}
		if dm.MemberID == "" || dm.ClientHost == "" {
			t.Errorf("member %s: id %q host %q", dm.ClientID, dm.MemberID, dm.ClientHost)
		}
		if join, ok := dm.Join.AsConsumer(); !ok || !slices.Contains(join.Topics, topic) {
			t.Errorf("member %s: join metadata %+v does not name %s", dm.ClientID, join, topic)
		}
		var got []int32
		if asg, ok := dm.Assigned.AsConsumer(); ok {
			for _, tp := range asg.Topics {
				if tp.Topic == topic {
					got = append(got, tp.Partitions...)
				}
			}
		}
		slices.Sort(got)
		if want := m.ownedSet(); !slices.Equal(got, want) {
			t.Errorf("member %s: DescribeGroups assignment %v, the member holds %v", dm.ClientID, got, want)
		}
	}
}

// checkListGroups: both groups listed with their states, and the state
// filter (ListGroups v4) keeps only the matching one.
func checkListGroups(t *testing.T, ctx context.Context, adm *kadm.Client) {
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if g, ok := lg["adm-g"]; !ok || g.State != "Stable" || g.ProtocolType != "consumer" {
		t.Errorf("ListGroups: adm-g %+v (listed %v)", g, ok)
	}
	if g, ok := lg["simple-g"]; !ok || g.State != "Empty" {
		t.Errorf("ListGroups: simple-g %+v (listed %v)", g, ok)
	}
	for _, f := range []struct{ state, in, notIn string }{
		{"Stable", "adm-g", "simple-g"}, {"Empty", "simple-g", "adm-g"},
	} {
		lg, err := adm.ListGroups(ctx, f.state)
		if err != nil {
			t.Fatalf("ListGroups(%s): %v", f.state, err)
		}
		if _, ok := lg[f.in]; !ok {
			t.Errorf("ListGroups(%s) lacks %s: %v", f.state, f.in, lg.Groups())
		}
		if _, ok := lg[f.notIn]; ok {
			t.Errorf("ListGroups(%s) lists %s: %v", f.state, f.notIn, lg.Groups())
		}
	}
}

// checkLag: the members consume everything and auto-commit, so adm-g's
// lag reaches 0 on every partition; simple-g lags by what it left.
func checkLag(t *testing.T, ctx context.Context, adm *kadm.Client, topic string, parts int32) {
	eventually(t, groupSettle, "adm-g lag 0", func() error {
		lags, err := adm.Lag(testCtx(t), "adm-g")
		if err != nil {
			return err
		}
		if err := lags.Error(); err != nil {
			return err
		}
		for p := int32(0); p < parts; p++ {
			ml, ok := lags["adm-g"].Lag[topic][p]
			if !ok || ml.Err != nil || ml.Lag != 0 || ml.Member == nil {
				return fmt.Errorf("%s/%d: %+v (listed %v)", topic, p, ml, ok)
			}
		}
		return nil
	})
	lags, err := adm.Lag(ctx, "simple-g")
	if err != nil || lags.Error() != nil {
		t.Fatalf("Lag simple-g: %v %v", err, lags.Error())
	}
	for p, want := range map[int32]int64{0: 7, 1: 3} {
		if ml := lags["simple-g"].Lag[topic][p]; ml.Lag != want || ml.Err != nil {
			t.Errorf("simple-g lag on %s/%d: %d (%v), want %d", topic, p, ml.Lag, ml.Err, want)
		}
	}
}

// checkDeletesRefused: an active group is neither deleted
// (NON_EMPTY_GROUP) nor stripped of offsets of a topic it consumes
// (GROUP_SUBSCRIBED_TO_TOPIC); a simple group's offsets can be deleted
// one partition at a time.
func checkDeletesRefused(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) {
	dr, err := adm.DeleteGroups(ctx, "adm-g")
	if err != nil {
		t.Fatalf("DeleteGroups: %v", err)
	}
	if e := dr["adm-g"].Err; !errors.Is(e, kerr.NonEmptyGroup) {
		t.Errorf("DeleteGroups of an active group: %v, want NON_EMPTY_GROUP", e)
	}
	do, err := adm.DeleteOffsets(ctx, "adm-g", kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatalf("DeleteOffsets adm-g: %v", err)
	}
	if e := do[topic][0]; !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Errorf("DeleteOffsets on a topic the active group consumes: %v, want GROUP_SUBSCRIBED_TO_TOPIC", e)
	}
	do, err = adm.DeleteOffsets(ctx, "simple-g", kadm.TopicsSet{topic: {1: {}}})
	if err != nil || do[topic][1] != nil {
		t.Fatalf("DeleteOffsets simple-g %s/1: %v %v", topic, err, do[topic][1])
	}
	fo, err := adm.FetchOffsets(ctx, "simple-g")
	if err != nil {
		t.Fatalf("FetchOffsets: %v", err)
	}
	if o, ok := fo.Lookup(topic, 1); ok && o.At != -1 {
		t.Errorf("after DeleteOffsets, simple-g %s/1 still at %d", topic, o.At)
	}
	if o, ok := fo.Lookup(topic, 0); !ok || o.At != 3 {
		t.Errorf("DeleteOffsets of partition 1 touched partition 0: %+v", o)
	}
}

// checkDeleted: empty groups are deleted with their offsets; a deleted
// group is described as Dead with no error (DescribeGroups v0-5).
func checkDeleted(t *testing.T, ctx context.Context, adm *kadm.Client) {
	dr, err := adm.DeleteGroups(ctx, "adm-g", "simple-g")
	if err != nil || dr.Error() != nil {
		t.Fatalf("DeleteGroups of empty groups: %v %v", err, dr.Error())
	}
	lg, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	if len(lg) != 0 {
		t.Errorf("groups left after DeleteGroups: %v", lg.Groups())
	}
	fo, err := adm.FetchOffsets(ctx, "adm-g")
	if err != nil {
		t.Errorf("FetchOffsets of a deleted group: %v, want no offsets and no error", err)
	}
	fo.Each(func(o kadm.OffsetResponse) {
		if o.At != -1 {
			t.Errorf("deleted group still has a commit: %+v", o)
		}
	})
	if dg, err := adm.DescribeGroups(ctx, "adm-g"); err != nil || dg["adm-g"].Err != nil || dg["adm-g"].State != "Dead" {
		t.Errorf("DescribeGroups of a deleted group: %v %+v, want state Dead with no error", err, dg["adm-g"])
	}
}

// checkOffsetsTopic: once groups exist, Metadata lists __consumer_offsets
// with is_internal=true and offsets.topic.num.partitions partitions.
func checkOffsetsTopic(t *testing.T, ctx context.Context, adm *kadm.Client, partitions int) {
	md, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		t.Fatalf("ListTopicsWithInternal: %v", err)
	}
	co, ok := md["__consumer_offsets"]
	if !ok || co.Err != nil {
		t.Fatalf("__consumer_offsets not in Metadata: %+v (%v)", co, md.Names())
	}
	if !co.IsInternal {
		t.Errorf("__consumer_offsets has is_internal=false")
	}
	if n := len(co.Partitions); n != partitions {
		t.Errorf("__consumer_offsets has %d partitions, want offsets.topic.num.partitions=%d", n, partitions)
	}
}
