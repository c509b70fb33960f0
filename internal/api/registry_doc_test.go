package api

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRegistryMatchesBrokerDoc: docs/broker.md's "What is served" table,
// edited by hand, lists exactly the APIs the registry serves, each with
// the versions ApiVersions advertises, so the page cannot drift from the
// handlers.
func TestRegistryMatchesBrokerDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/broker.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "## What is served\n")
	if !ok {
		t.Fatal(`docs/broker.md has no "## What is served" section`)
	}
	table, _, _ = strings.Cut(table, "\n\n")
	row := regexp.MustCompile(`^\| [A-Za-z]+ \((\d+)\) \| (\d+)(?:–(\d+))? \|`)
	documented := map[int16]string{}
	for _, line := range strings.Split(table, "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key, _ := strconv.Atoi(m[1])
		versions := m[2]
		if m[3] != "" {
			versions += "–" + m[3]
		}
		if _, dup := documented[int16(key)]; dup {
			t.Errorf("docs/broker.md lists API key %d twice", key)
		}
		documented[int16(key)] = versions
	}
	for _, h := range handlers {
		want := fmt.Sprint(h.minVersion)
		if h.maxVersion != h.minVersion {
			want += fmt.Sprintf("–%d", h.maxVersion)
		}
		got, ok := documented[h.key]
		switch {
		case !ok:
			t.Errorf("docs/broker.md does not list API key %d (versions %s)", h.key, want)
		case got != want:
			t.Errorf("docs/broker.md gives API key %d versions %s, the registry serves %s", h.key, got, want)
		}
		delete(documented, h.key)
	}
	for key, versions := range documented {
		t.Errorf("docs/broker.md lists API key %d (versions %s), which is not served", key, versions)
	}
}
