package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestE2EGroupBadJoins: JoinGroup requests a coordinator must refuse, each
// with a clear error and without disturbing the group or the connection:
// a session timeout outside the broker's bounds, an empty protocol type, a
// protocol type other than the group's, an oversized member metadata, and
// a member beyond group.max.size.
func TestE2EGroupBadJoins(t *testing.T) {
	b := startGroupBroker(t, withSet("group.max.size=2"))
	const topic, parts = "bad", 2
	createTopic(t, newAdmin(t, b.Addr()), topic, parts, nil)
	log := newGroupLog()
	spec := memberSpec{Addr: b.Addr(), Group: "bad-g", Topic: topic, Balancer: "range", Session: groupSession}
	m1 := startMember(t, log, "a", spec)
	m2 := startMember(t, log, "b", spec)
	wantAssignment(t, parts, "two members", m1.ownedSet, m2.ownedSet)
	waitGroupState(t, b.Addr(), "bad-g", "Stable", 2)
	gen := m1.generation()

	raw := newClient(t, b.Addr())
	join := func(group, protocolType string, sessionMs int32, metadata []byte) error {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Group = group
		req.SessionTimeoutMillis = sessionMs
		req.RebalanceTimeoutMillis = 10000
		req.ProtocolType = protocolType
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = "range"
		p.Metadata = metadata
		req.Protocols = append(req.Protocols, p)
		resp, err := req.RequestWith(testCtx(t), raw)
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.ErrorCode)
	}
	meta := (&kmsg.ConsumerMemberMetadata{Version: 0, Topics: []string{topic}}).AppendTo(nil)
	cases := []struct {
		name      string
		group     string
		protoType string
		sessionMs int32
		metadata  []byte
		want      error
	}{
		{"session below group.min.session.timeout.ms", "fresh-g", "consumer", 1000, meta, kerr.InvalidSessionTimeout},
		{"session above group.max.session.timeout.ms", "fresh-g", "consumer", 2_000_000, meta, kerr.InvalidSessionTimeout},
		{"empty protocol type", "fresh-g", "", 10000, meta, kerr.InconsistentGroupProtocol},
		{"protocol type other than the group's", "bad-g", "connect", 10000, meta, kerr.InconsistentGroupProtocol},
		{"oversized member metadata", "fresh-g", "consumer", 10000, bytes.Repeat([]byte{1}, 2<<20), kerr.InvalidRequest},
	}
	for _, c := range cases {
		if err := join(c.group, c.protoType, c.sessionMs, c.metadata); !errors.Is(err, c.want) {
			t.Errorf("JoinGroup with %s: %v, want %v", c.name, err, c.want)
		}
	}

	// A third member of a group capped at two is refused.
	third := newClient(t, b.Addr(), kgo.ConsumerGroup("bad-g"), kgo.ConsumeTopics(topic), kgo.Balancers(kgo.RangeBalancer()),
		kgo.SessionTimeout(groupSession), kgo.HeartbeatInterval(groupHeartbeat), kgo.ClientID("sluice-e2e-third"))
	eventually(t, groupSettle, "third member refused with GROUP_MAX_SIZE_REACHED", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var got error
		third.PollFetches(ctx).EachError(func(_ string, _ int32, err error) {
			if errors.Is(err, kerr.GroupMaxSizeReached) {
				got = err
			}
		})
		if got == nil {
			return fmt.Errorf("no GROUP_MAX_SIZE_REACHED yet")
		}
		return nil
	})
	third.Close()

	// The group itself is untouched: same members, same generation, and
	// the connection that sent the bad requests still works.
	dg := waitGroupState(t, b.Addr(), "bad-g", "Stable", 2)
	for _, m := range dg.Members {
		if strings.Contains(m.ClientID, "third") {
			t.Errorf("refused member %s is listed in the group", m.MemberID)
		}
	}
	if g := m1.generation(); g != gen {
		t.Logf("generation %d -> %d: the refused joins caused a rebalance", gen, g)
	}
	if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(testCtx(t), raw); err != nil {
		t.Errorf("ApiVersions after the bad joins: %v", err)
	}
	log.check(t)
}
