package e2e

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestE2ETopicLifecycle creates, lists, describes, grows and deletes
// topics through kadm, the way an operator's tooling does.
func TestE2ETopicLifecycle(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)

	createTopic(t, adm, "orders", 3, map[string]*string{"retention.ms": strp("3600000")})
	createTopic(t, adm, "audit", 1, nil)

	// Creating it again is TOPIC_ALREADY_EXISTS, not a silent success.
	resp, err := adm.CreateTopics(ctx, 3, 1, nil, "orders")
	if err != nil {
		t.Fatalf("CreateTopics again: %v", err)
	}
	if r, _ := resp.On("orders", nil); !errors.Is(r.Err, kerr.TopicAlreadyExists) {
		t.Errorf("second create of orders: err %v, want TOPIC_ALREADY_EXISTS", r.Err)
	}

	// validate_only creates nothing.
	vresp, err := adm.ValidateCreateTopics(ctx, 2, 1, nil, "dry-run")
	if err != nil {
		t.Fatalf("ValidateCreateTopics: %v", err)
	}
	if r, _ := vresp.On("dry-run", nil); r.Err != nil {
		t.Errorf("validate-only create: %v", r.Err)
	}

	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatalf("ListTopics: %v", err)
	}
	if !topics.Has("orders") || !topics.Has("audit") {
		t.Fatalf("ListTopics = %v, want orders and audit", topics.Names())
	}
	if topics.Has("dry-run") {
		t.Errorf("validate-only create made topic dry-run")
	}
	if n := len(topics["orders"].Partitions); n != 3 {
		t.Errorf("orders has %d partitions, want 3", n)
	}
	for _, p := range topics["orders"].Partitions {
		if p.Err != nil || p.Leader < 0 || len(p.Replicas) != 1 {
			t.Errorf("orders partition %d: leader %d replicas %v err %v", p.Partition, p.Leader, p.Replicas, p.Err)
		}
	}

	// Describe the topic's configs: the one we set is a topic override.
	rcs, err := adm.DescribeTopicConfigs(ctx, "orders")
	if err != nil {
		t.Fatalf("DescribeTopicConfigs: %v", err)
	}
	rc, err := rcs.On("orders", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("DescribeTopicConfigs orders: %v %v", err, rc.Err)
	}
	c, ok := findConfig(rc, "retention.ms")
	if !ok || c.Value == nil || *c.Value != "3600000" {
		t.Errorf("retention.ms = %+v, want 3600000", c)
	} else if c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms source = %v, want DYNAMIC_TOPIC_CONFIG", c.Source)
	}
	if c, ok := findConfig(rc, "cleanup.policy"); !ok || c.Value == nil || *c.Value != "delete" {
		t.Errorf("cleanup.policy = %+v, want default delete", c)
	}

	// Grow orders from 3 to 5 partitions.
	cp, err := adm.UpdatePartitions(ctx, 5, "orders")
	if err != nil {
		t.Fatalf("UpdatePartitions: %v", err)
	}
	if r := cp["orders"]; r.Err != nil {
		t.Fatalf("UpdatePartitions orders: %v (%s)", r.Err, r.ErrMessage)
	}
	// Shrinking is INVALID_PARTITIONS.
	cp, err = adm.UpdatePartitions(ctx, 2, "orders")
	if err != nil {
		t.Fatalf("UpdatePartitions shrink: %v", err)
	}
	if r := cp["orders"]; !errors.Is(r.Err, kerr.InvalidPartitions) {
		t.Errorf("shrinking orders: err %v, want INVALID_PARTITIONS", r.Err)
	}
	eventually(t, 20*time.Second, "orders has 5 partitions", func() error {
		md, err := adm.ListTopics(ctx, "orders")
		if err != nil {
			return err
		}
		if n := len(md["orders"].Partitions); n != 5 {
			return fmt.Errorf("%d partitions", n)
		}
		return nil
	})

	// Delete audit; it disappears from metadata.
	dr, err := adm.DeleteTopics(ctx, "audit")
	if err != nil {
		t.Fatalf("DeleteTopics: %v", err)
	}
	if r := dr["audit"]; r.Err != nil {
		t.Fatalf("DeleteTopics audit: %v (%s)", r.Err, r.ErrMessage)
	}
	eventually(t, 20*time.Second, "audit deleted", func() error {
		md, err := adm.ListTopics(ctx)
		if err != nil {
			return err
		}
		if md.Has("audit") {
			return errors.New("audit still listed")
		}
		return nil
	})
	dr, err = adm.DeleteTopics(ctx, "never-existed")
	if err != nil {
		t.Fatalf("DeleteTopics never-existed: %v", err)
	}
	if r := dr["never-existed"]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("deleting an unknown topic: err %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
	}
}

func findConfig(rc kadm.ResourceConfig, key string) (kadm.Config, bool) {
	for _, c := range rc.Configs {
		if c.Key == key {
			return c, true
		}
	}
	return kadm.Config{}, false
}

// TestE2EInvalidTopicsAndConfigs checks Kafka's answers for bad names and
// bad config values at create and alter time.
func TestE2EInvalidTopicsAndConfigs(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	ctx := testCtx(t)

	for _, name := range []string{"bad/name", "has space", "..", ".", "tab\there", "ümlaut"} {
		resp, err := adm.CreateTopics(ctx, 1, 1, nil, name)
		if err != nil {
			t.Fatalf("CreateTopics %q: %v", name, err)
		}
		r, _ := resp.On(name, nil)
		if !errors.Is(r.Err, kerr.InvalidTopicException) {
			t.Errorf("create %q: err %v, want INVALID_TOPIC_EXCEPTION", abbrev(name), r.Err)
		}
	}
	long := make([]byte, 250)
	for i := range long {
		long[i] = 'a'
	}
	resp, err := adm.CreateTopics(ctx, 1, 1, nil, string(long))
	if err != nil {
		t.Fatalf("CreateTopics 250 chars: %v", err)
	}
	if r, _ := resp.On(string(long), nil); !errors.Is(r.Err, kerr.InvalidTopicException) {
		t.Errorf("create 250-char name: err %v, want INVALID_TOPIC_EXCEPTION (max 249)", r.Err)
	}

	resp, err = adm.CreateTopics(ctx, 1, 1, map[string]*string{"retention.ms": strp("not-a-number")}, "badcfg")
	if err != nil {
		t.Fatalf("CreateTopics badcfg: %v", err)
	}
	if r, _ := resp.On("badcfg", nil); !errors.Is(r.Err, kerr.InvalidConfig) {
		t.Errorf("create with retention.ms=not-a-number: err %v, want INVALID_CONFIG", r.Err)
	}
	resp, err = adm.CreateTopics(ctx, 1, 1, map[string]*string{"cleanup.policy": strp("shred")}, "badcfg2")
	if err != nil {
		t.Fatalf("CreateTopics badcfg2: %v", err)
	}
	if r, _ := resp.On("badcfg2", nil); !errors.Is(r.Err, kerr.InvalidConfig) {
		t.Errorf("create with cleanup.policy=shred: err %v, want INVALID_CONFIG", r.Err)
	}

	createTopic(t, adm, "cfg", 1, nil)

	// IncrementalAlterConfigs: a good value sticks, a bad one is refused
	// and leaves the old value.
	ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("120000")}}, "cfg")
	if err != nil {
		t.Fatalf("AlterTopicConfigs: %v", err)
	}
	if r, _ := ar.On("cfg", nil); r.Err != nil {
		t.Fatalf("AlterTopicConfigs retention.ms=120000: %v (%s)", r.Err, r.ErrMessage)
	}
	ar, err = adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: strp("soon")}}, "cfg")
	if err != nil {
		t.Fatalf("AlterTopicConfigs bad: %v", err)
	}
	if r, _ := ar.On("cfg", nil); !errors.Is(r.Err, kerr.InvalidConfig) {
		t.Errorf("incremental alter retention.ms=soon: err %v, want INVALID_CONFIG", r.Err)
	}
	eventually(t, 20*time.Second, "retention.ms=120000 visible", func() error {
		return wantTopicConfig(ctx, adm, "cfg", "retention.ms", "120000")
	})

	// Legacy AlterConfigs (whole-state replace).
	ar, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: strp("1048576")}}, "cfg")
	if err != nil {
		t.Fatalf("AlterTopicConfigsState: %v", err)
	}
	if r, _ := ar.On("cfg", nil); r.Err != nil {
		t.Fatalf("AlterConfigs segment.bytes: %v (%s)", r.Err, r.ErrMessage)
	}
	ar, err = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.bytes", Value: strp("-5")}}, "cfg")
	if err != nil {
		t.Fatalf("AlterTopicConfigsState bad: %v", err)
	}
	if r, _ := ar.On("cfg", nil); !errors.Is(r.Err, kerr.InvalidConfig) {
		t.Errorf("legacy alter segment.bytes=-5: err %v, want INVALID_CONFIG", r.Err)
	}
	eventually(t, 20*time.Second, "segment.bytes=1048576 visible", func() error {
		return wantTopicConfig(ctx, adm, "cfg", "segment.bytes", "1048576")
	})

	// Configs of a topic that does not exist: UNKNOWN_TOPIC_OR_PARTITION.
	rcs, err := adm.DescribeTopicConfigs(ctx, "nope")
	if err == nil {
		if rc, _ := rcs.On("nope", nil); !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("describe configs of unknown topic: err %v, want UNKNOWN_TOPIC_OR_PARTITION", rc.Err)
		}
	} else if !errors.Is(err, kerr.UnknownTopicOrPartition) {
		t.Errorf("describe configs of unknown topic: %v", err)
	}
}

func wantTopicConfig(ctx context.Context, adm *kadm.Client, topic, key, want string) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return err
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return err
	}
	if rc.Err != nil {
		return rc.Err
	}
	c, ok := findConfig(rc, key)
	if !ok || c.Value == nil {
		return fmt.Errorf("%s not described", key)
	}
	if *c.Value != want {
		return fmt.Errorf("%s = %s, want %s", key, *c.Value, want)
	}
	return nil
}

func abbrev(s string) string {
	if len(s) > 20 {
		return fmt.Sprintf("%q...(%d bytes)", s[:20], len(s))
	}
	return s
}
