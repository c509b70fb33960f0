package config

import (
	"slices"
	"strings"
	"testing"
)

func TestBrokerConfigsSortedAndUnique(t *testing.T) {
	if !slices.IsSortedFunc(BrokerConfigs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("BrokerConfigs is not sorted by name")
	}
	seen := map[string]bool{}
	for _, d := range BrokerConfigDoc() {
		if seen[d.Name] {
			t.Errorf("%s defined twice (a BrokerConfigs entry shadows a topic default?)", d.Name)
		}
		seen[d.Name] = true
	}
}

func TestBrokerConfigsDefaultsValid(t *testing.T) {
	for _, d := range BrokerConfigDoc() {
		if d.Doc == "" {
			t.Errorf("%s: no Doc", d.Name)
		}
		if d.BrokerName != "" {
			t.Errorf("%s: a broker key with a BrokerName %q", d.Name, d.BrokerName)
		}
		if d.Default != "" && !d.valid(d.Default) {
			t.Errorf("%s: default %q is not valid: want %s", d.Name, d.Default, d.Accepted())
		}
	}
}

func TestBrokerConfigDocCoversTopicDefaults(t *testing.T) {
	doc := BrokerConfigDoc()
	if !slices.IsSortedFunc(doc, func(a, b Def) int { return strings.Compare(a.Name, b.Name) }) {
		t.Error("BrokerConfigDoc is not sorted by name")
	}
	if len(doc) != len(BrokerConfigs)+len(TopicConfigs) {
		t.Errorf("BrokerConfigDoc has %d keys, want %d", len(doc), len(BrokerConfigs)+len(TopicConfigs))
	}
	for _, topic := range TopicConfigs {
		i := slices.IndexFunc(doc, func(d Def) bool { return d.Name == topic.BrokerName })
		if i < 0 {
			t.Errorf("topic default %s (for %s) missing", topic.BrokerName, topic.Name)
			continue
		}
		d := doc[i]
		if d.Type != topic.Type || d.Default != topic.Default || !strings.Contains(d.Doc, topic.Name) {
			t.Errorf("%s = %+v, want the type and default of %s and its name in Doc", d.Name, d, topic.Name)
		}
	}
}

func TestBrokerConfigsSpecificDefaults(t *testing.T) {
	// The defaults the issue and the docs promise; a change here is a
	// change users see.
	want := map[string]string{
		NodeID: "1", ProcessRoles: "broker,controller", Listeners: "PLAINTEXT://localhost:9092",
		LogDirs: "./data", LogDir: "./data", NumPartitions: "1", AutoCreateTopicsEnable: "true",
		SocketRequestMaxBytes: "104857600", QueuedMaxRequestBytes: "536870912", MaxConnections: "10000",
		ConnectionsMaxIdleMs: "600000", LogFlushPolicy: "always", LogRetentionHours: "168",
		GroupMaxSize: "2147483647", OffsetsTopicNumPartitions: "50", FetchMaxBytes: "57671680",
		LogRetentionMs: "604800000", "log.segment.bytes": "1073741824",
	}
	for key, value := range want {
		d, ok := lookupStatic(key)
		if !ok {
			t.Errorf("%s: not a broker config", key)
			continue
		}
		if d.Default != value {
			t.Errorf("%s default = %q, want %q", key, d.Default, value)
		}
	}
	for _, key := range []string{"cluster.id", "request.timeout.ms", "retention.ms"} {
		if _, ok := lookupStatic(key); ok {
			t.Errorf("%s should not be a static broker config", key)
		}
	}
}
