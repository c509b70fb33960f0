package main

import (
	"encoding/base64"
	"encoding/json"
	"testing"
)

// TestTopicIDSpelledAsKafka: topic ids print as Kafka prints a Uuid
// (URL-safe base64, no padding), in create and describe alike.
func TestTopicIDSpelledAsKafka(t *testing.T) {
	addr := startBroker(t)
	out, stderr, code := runCLI(t, "topic", "create", "ids", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var created []topicCreated
	if err := json.Unmarshal([]byte(out), &created); err != nil || len(created) != 1 {
		t.Fatalf("create --json: %v\n%s", err, out)
	}
	out, stderr, code = runCLI(t, "topic", "describe", "ids", "--json", "--brokers", addr)
	requireCode(t, code, exitOK, stderr)
	var d topicDescription
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("describe --json: %v\n%s", err, out)
	}
	for what, id := range map[string]string{"create": created[0].ID, "describe": d.ID} {
		raw, err := base64.RawURLEncoding.DecodeString(id)
		if err != nil || len(raw) != 16 {
			t.Errorf("%s prints topic id %q: not 16 bytes of URL-safe base64 without padding (%v)", what, id, err)
		}
	}
	if created[0].ID != d.ID {
		t.Errorf("create says %q, describe %q", created[0].ID, d.ID)
	}
}
