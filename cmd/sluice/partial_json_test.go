package main

import (
	"encoding/json"
	"testing"
)

// unmarshalOut parses a command's --json stdout into v, failing the test
// with the output when it is not the JSON expected.
func unmarshalOut(t *testing.T, what, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%s: %v\n%s", what, err, out)
	}
}

// A topic command naming several topics where one fails lists every name
// in its --json output, the failed one with its error and Kafka code, and
// exits 1; the others are still done.
func TestTopicJSONPartialFailure(t *testing.T) {
	addr := startBroker(t, "auto.create.topics.enable=false")
	existing, fresh, missing := uniqueName("exists"), uniqueName("fresh"), uniqueName("missing")
	createTopic(t, addr, existing, 1)

	out, stderr, code := runCLI(t, "topic", "create", existing, fresh, "-p", "2", "--json", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	var created []topicCreated
	unmarshalOut(t, "create --json", out, &created)
	if len(created) != 2 {
		t.Fatalf("create %s %s --json lists %d topics, want both: %s", existing, fresh, len(created), out)
	}
	if c := created[0]; c.Topic != existing || c.ErrorCode != "TOPIC_ALREADY_EXISTS" || c.Error == "" || c.ID != "" || c.Partitions != 0 {
		t.Errorf("the existing topic's entry = %+v, want only its TOPIC_ALREADY_EXISTS error", c)
	}
	if c := created[1]; c.Topic != fresh || c.Error != "" || c.ErrorCode != "" || c.Partitions != 2 || c.ID == "" {
		t.Errorf("the created topic's entry = %+v", c)
	}

	out, stderr, code = runCLI(t, "topic", "delete", fresh, missing, "--json", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	var deleted struct {
		Deleted []string      `json:"deleted"`
		Errors  []nameFailure `json:"errors"`
	}
	unmarshalOut(t, "delete --json", out, &deleted)
	if len(deleted.Deleted) != 1 || deleted.Deleted[0] != fresh {
		t.Errorf("delete --json deleted = %v, want [%s]", deleted.Deleted, fresh)
	}
	if len(deleted.Errors) != 1 || deleted.Errors[0].Topic != missing ||
		deleted.Errors[0].ErrorCode != "UNKNOWN_TOPIC_OR_PARTITION" || deleted.Errors[0].Error == "" {
		t.Errorf("delete --json errors = %+v, want %s with UNKNOWN_TOPIC_OR_PARTITION", deleted.Errors, missing)
	}

	// With nothing failing, errors is an empty list, not null or absent.
	out, stderr, code = runCLI(t, "topic", "delete", existing, "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var raw map[string]json.RawMessage
	unmarshalOut(t, "delete --json", out, &raw)
	if string(raw["errors"]) != "[]" {
		t.Errorf(`delete --json with no failure: "errors" is %s, want []`, raw["errors"])
	}
}

// The group commands that take several names (or partitions) do the same.
func TestGroupJSONPartialFailure(t *testing.T) {
	addr := groupBroker(t)
	createTopic(t, addr, "orders", 1)
	createTopic(t, addr, "refunds", 1)
	produceAt(t, addr, "orders", 0, 5)
	commitOffsets(t, addr, "billing", map[string]map[int32]int64{"orders": {0: 3}, "refunds": {0: 0}})
	commitOffsets(t, addr, "audit", map[string]map[int32]int64{"orders": {0: 1}})

	out, stderr, code := runCLI(t, "group", "describe", "billing", "nobody", "--json", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	var described []map[string]any
	unmarshalOut(t, "describe --json", out, &described)
	if len(described) != 2 || described[0]["group"] != "billing" || described[0]["total_lag"] != 2.0 ||
		described[1]["group"] != "nobody" || described[1]["error_code"] != "GROUP_ID_NOT_FOUND" {
		t.Errorf("describe billing nobody --json = %s", out)
	}
	// One name that fails still prints its entry, an object as for one group.
	out, stderr, code = runCLI(t, "group", "describe", "nobody", "--json", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	var one nameFailure
	unmarshalOut(t, "describe nobody --json", out, &one)
	if one.Group != "nobody" || one.ErrorCode != "GROUP_ID_NOT_FOUND" {
		t.Errorf("describe nobody --json = %s", out)
	}

	// A member subscribed to orders: its offset cannot go, refunds' can.
	leave := groupMember(t, addr, "billing", "orders")
	out, stderr, code = runCLI(t, "group", "offset-delete", "billing", "--topic", "orders", "--topic", "refunds", "--json", "--brokers", addr)
	leave()
	requireCode(t, code, exitError, stderr)
	var offsets struct {
		Group   string               `json:"group"`
		Deleted []groupOffsetDeleted `json:"deleted"`
		Errors  []nameFailure        `json:"errors"`
	}
	unmarshalOut(t, "offset-delete --json", out, &offsets)
	if len(offsets.Deleted) != 1 || offsets.Deleted[0] != (groupOffsetDeleted{"refunds", 0}) {
		t.Errorf("offset-delete --json deleted = %+v, want refunds/0", offsets.Deleted)
	}
	if len(offsets.Errors) != 1 || offsets.Errors[0].Topic != "orders" || offsets.Errors[0].Partition == nil ||
		*offsets.Errors[0].Partition != 0 || offsets.Errors[0].ErrorCode != "GROUP_SUBSCRIBED_TO_TOPIC" {
		t.Errorf("offset-delete --json errors = %s", out)
	}

	out, stderr, code = runCLI(t, "group", "delete", "audit", "nobody", "--json", "--brokers", addr)
	requireCode(t, code, exitError, stderr)
	var deleted struct {
		Deleted []string      `json:"deleted"`
		Errors  []nameFailure `json:"errors"`
	}
	unmarshalOut(t, "group delete --json", out, &deleted)
	if len(deleted.Deleted) != 1 || deleted.Deleted[0] != "audit" || len(deleted.Errors) != 1 ||
		deleted.Errors[0].Group != "nobody" || deleted.Errors[0].ErrorCode != "GROUP_ID_NOT_FOUND" {
		t.Errorf("group delete audit nobody --json = %s", out)
	}
}
