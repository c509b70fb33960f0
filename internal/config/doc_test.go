package config

import (
	"flag"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the definitions")

const referencePath = "../../docs/configuration.md"

func TestConfigurationDocIsCurrent(t *testing.T) {
	want := ReferenceMarkdown()
	if *update {
		if err := vfs.WriteFileAtomic(vfs.OS(), referencePath, []byte(want)); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := vfs.ReadFile(vfs.OS(), referencePath, 1<<20)
	if err != nil {
		t.Fatalf("%v; generate it: go test ./internal/config -run TestConfigurationDocIsCurrent -update", err)
	}
	if string(got) != want {
		t.Fatalf("docs/configuration.md is stale: the config definitions changed.\n" +
			"Regenerate it: go test ./internal/config -run TestConfigurationDocIsCurrent -update")
	}
}

func TestReferenceListsEveryKeyWithItsDoc(t *testing.T) {
	doc := ReferenceMarkdown()
	for _, defs := range [][]Def{BrokerConfigDoc(), TopicConfigs} {
		for _, d := range defs {
			if strings.TrimSpace(d.Doc) == "" {
				t.Errorf("%s has no Doc line", d.Name)
			}
			if !strings.Contains(doc, "| `"+d.Name+"` |") {
				t.Errorf("%s is missing from the reference", d.Name)
			}
		}
	}
	if !strings.Contains(doc, "| `SLUICE_LOG_RETENTION_HOURS` |") {
		t.Error("the reference lacks environment variable names")
	}
}

func TestEnvNameRoundTrips(t *testing.T) {
	settings := envSettings([]string{EnvName("log.retention.hours") + "=5"})
	if len(settings) != 1 || settings[0].key != "log.retention.hours" {
		t.Fatalf("EnvName does not map back through envSettings: %+v", settings)
	}
}
