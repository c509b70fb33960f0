package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestGroupDescribeShareGroup: a share group (a member joined with raw
// ShareGroupHeartbeat) is described with type share, the simple assignor,
// its epochs and its member's assignment, and listed by --all.
func TestGroupDescribeShareGroup(t *testing.T) {
	addr := groupBroker(t)
	createTopic(t, addr, "tasks", 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := kmsg.NewPtrShareGroupHeartbeatRequest()
	req.GroupID, req.MemberID, req.SubscribedTopicNames = "crunchers", "member-1", []string{"tasks"}
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		if err == nil {
			break
		}
		if !kerr.IsRetriable(err) || ctx.Err() != nil {
			t.Fatalf("heartbeat: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	ds := describeGroupsJSON(t, addr, exitOK, "--all")
	if len(ds) != 1 {
		t.Fatalf("describe --all = %+v", ds)
	}
	d := ds[0]
	if d.Group != "crunchers" || d.ProtocolType != "share" || d.GroupType != "share" || d.Assignor != "simple" || d.GroupEpoch != 1 ||
		d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != "member-1" ||
		d.Members[0].MemberEpoch == nil || *d.Members[0].MemberEpoch != 1 || len(d.Members[0].Assigned["tasks"]) != 2 {
		t.Fatalf("describe = %+v", d)
	}
	out, stderr, code := runCLI(t, "group", "describe", "crunchers", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(out, "share group (KIP-932), assignor simple, group epoch 1") || !strings.Contains(out, "member-1  1 ") ||
		!strings.Contains(out, "tasks:0,1") {
		t.Errorf("describe crunchers:\n%s", out)
	}
}
