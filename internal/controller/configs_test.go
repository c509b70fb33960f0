package controller

import (
	"maps"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

func topicResource(name string) ConfigResource {
	return ConfigResource{metadata.ConfigResourceTopic, name}
}

func TestControllerAlterConfigsReplacesAll(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1")
	cl.createTopic("t", 1, 1, ConfigEntry{"retention.ms", "1000"}, ConfigEntry{"segment.ms", "5000"})
	recs, resp := cl.c.AlterConfigs(cl.img, AlterConfigsRequest{Resources: []AlterConfigsResource{
		{topicResource("t"), []ConfigEntry{{"retention.ms", "1000"}, {"cleanup.policy", "compact"}}},
		{topicResource("missing"), nil},
		{ConfigResource{metadata.ConfigResourceBroker, ""}, []ConfigEntry{{"log.retention.ms", "60000"}}},
		{ConfigResource{metadata.ConfigResourceBroker, "x"}, nil},
		{ConfigResource{99, "t"}, nil},
	}})
	requireErr(t, resp.Resources[0].Err, nil)
	requireErr(t, resp.Resources[1].Err, ErrUnknownTopic)
	requireErr(t, resp.Resources[2].Err, nil)
	requireErr(t, resp.Resources[3].Err, ErrInvalidRequest)
	requireErr(t, resp.Resources[4].Err, ErrInvalidRequest)
	// segment.ms deleted, cleanup.policy set, retention.ms unchanged (no
	// record), log.retention.ms set.
	if len(recs) != 3 {
		for _, r := range recs {
			t.Log(formatRecord(r))
		}
		t.Fatalf("%d records, want 3", len(recs))
	}
	cl.apply(recs)
	want := map[string]string{"retention.ms": "1000", "cleanup.policy": "compact"}
	if got := cl.img.Configs(metadata.ConfigResourceTopic, "t"); !maps.Equal(got, want) {
		t.Errorf("topic configs %v, want %v", got, want)
	}
	if got := cl.img.Configs(metadata.ConfigResourceBroker, ""); got["log.retention.ms"] != "60000" {
		t.Errorf("cluster configs %v", got)
	}
}

func TestControllerAlterConfigsValidation(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1")
	cl.createTopic("t", 1, 1)
	tests := []struct {
		name    string
		res     AlterConfigsResource
		want    error
		wantMsg string
	}{
		{"bad value", AlterConfigsResource{topicResource("t"), []ConfigEntry{{"retention.ms", "soon"}}}, ErrInvalidConfig, "retention.ms"},
		{"unknown key", AlterConfigsResource{topicResource("t"), []ConfigEntry{{"nope", "1"}}}, ErrInvalidConfig, "nope"},
		{"key twice", AlterConfigsResource{topicResource("t"), []ConfigEntry{{"retention.ms", "1"}, {"retention.ms", "2"}}}, ErrInvalidRequest, ""},
		{"topic key on broker", AlterConfigsResource{ConfigResource{metadata.ConfigResourceBroker, "1"}, []ConfigEntry{{"retention.ms", "1"}}}, ErrInvalidConfig, ""},
		{"bad broker value", AlterConfigsResource{ConfigResource{metadata.ConfigResourceBroker, "1"}, []ConfigEntry{{"min.insync.replicas", "0"}}}, ErrInvalidConfig, ""},
	}
	for _, tt := range tests {
		recs, resp := cl.c.AlterConfigs(cl.img, AlterConfigsRequest{Resources: []AlterConfigsResource{tt.res}})
		err := resp.Resources[0].Err
		if len(recs) != 0 || !errorsIs(err, tt.want) {
			t.Errorf("%s: %d records, %v, want %v", tt.name, len(recs), err, tt.want)
		}
		if tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)) {
			t.Errorf("%s: message %v does not name %s", tt.name, err, tt.wantMsg)
		}
	}
	// A resource named twice fails both times; validate-only emits nothing.
	res := AlterConfigsResource{topicResource("t"), []ConfigEntry{{"retention.ms", "1"}}}
	recs, resp := cl.c.AlterConfigs(cl.img, AlterConfigsRequest{Resources: []AlterConfigsResource{res, res}})
	if len(recs) != 0 || !errorsIs(resp.Resources[0].Err, ErrInvalidRequest) || !errorsIs(resp.Resources[1].Err, ErrInvalidRequest) {
		t.Errorf("duplicate resource: %d records, %+v", len(recs), resp.Resources)
	}
	recs, resp = cl.c.AlterConfigs(cl.img, AlterConfigsRequest{ValidateOnly: true, Resources: []AlterConfigsResource{res}})
	if len(recs) != 0 || resp.Resources[0].Err != nil {
		t.Errorf("validate-only: %d records, %v", len(recs), resp.Resources[0].Err)
	}
}

func TestControllerIncrementalAlterConfigs(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1")
	cl.createTopic("t", 1, 1, ConfigEntry{"retention.ms", "1000"}, ConfigEntry{"segment.ms", "5000"})
	alter := func(ops ...ConfigOp) error {
		t.Helper()
		recs, resp := cl.c.IncrementalAlterConfigs(cl.img, IncrementalAlterConfigsRequest{Resources: []IncrementalAlterConfigsResource{
			{topicResource("t"), ops},
		}})
		if resp.Resources[0].Err != nil && len(recs) != 0 {
			t.Fatalf("error %v with %d records", resp.Resources[0].Err, len(recs))
		}
		cl.apply(recs)
		return resp.Resources[0].Err
	}
	configs := func() map[string]string { return cl.img.Configs(metadata.ConfigResourceTopic, "t") }

	requireErr(t, alter(ConfigOp{"retention.ms", OpSet, "2000"}, ConfigOp{"segment.ms", OpDelete, ""}), nil)
	if want := map[string]string{"retention.ms": "2000"}; !maps.Equal(configs(), want) {
		t.Errorf("after set+delete %v", configs())
	}
	// Appending to an unset list starts from the default ("delete").
	requireErr(t, alter(ConfigOp{"cleanup.policy", OpAppend, "compact"}), nil)
	if got := configs()["cleanup.policy"]; got != "delete,compact" {
		t.Errorf("append: %q", got)
	}
	requireErr(t, alter(ConfigOp{"cleanup.policy", OpAppend, "compact"}), nil) // already there
	requireErr(t, alter(ConfigOp{"cleanup.policy", OpSubtract, "delete"}), nil)
	if got := configs()["cleanup.policy"]; got != "compact" {
		t.Errorf("subtract: %q", got)
	}
	requireErr(t, alter(ConfigOp{"cleanup.policy", OpSubtract, "compact"}), ErrInvalidConfig) // would be empty
	requireErr(t, alter(ConfigOp{"retention.ms", OpAppend, "5"}), ErrInvalidConfig)           // not a list
	requireErr(t, alter(ConfigOp{"nope", OpAppend, "5"}), ErrInvalidConfig)
	requireErr(t, alter(ConfigOp{"retention.ms", OpSet, "x"}), ErrInvalidConfig)
	requireErr(t, alter(ConfigOp{"retention.ms", OpSet, "1"}, ConfigOp{"retention.ms", OpDelete, ""}), ErrInvalidRequest)
	requireErr(t, alter(ConfigOp{"retention.ms", 9, "1"}), ErrInvalidRequest)
	requireErr(t, alter(ConfigOp{"min.compaction.lag.ms", OpSet, "10"}, ConfigOp{"max.compaction.lag.ms", OpSet, "5"}), ErrInvalidConfig)
	requireErr(t, alter(ConfigOp{"not.set", OpDelete, ""}), nil) // deleting what is not set is a no-op, as in Kafka
	if want := map[string]string{"retention.ms": "2000", "cleanup.policy": "compact"}; !maps.Equal(configs(), want) {
		t.Errorf("failed ops changed configs: %v", configs())
	}
}
