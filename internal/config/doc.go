package config

import (
	"fmt"
	"slices"
	"strings"
)

// ReferenceMarkdown renders docs/configuration.md: every broker, topic and
// group key Sluice accepts, from the definitions the broker validates with, so
// the reference cannot drift from the code (TestConfigurationDocIsCurrent).
func ReferenceMarkdown() string {
	var b strings.Builder
	b.WriteString(`# Configuration reference

<!-- Generated from internal/config by ReferenceMarkdown; do not edit.
     Regenerate: go test ./internal/config -run TestConfigurationDocIsCurrent -update -->

Sluice takes Kafka's configuration keys, with Kafka's names, types and
defaults where Sluice acts on them.

**Broker keys** are set, highest precedence first, by a flag of
` + "`sluice serve`" + ` (` + "`--set key=value`" + `, ` + "`--data-dir`" + ` for log.dirs,
` + "`--listen`" + ` for listeners, ` + "`--http`" + ` for http.listener, ` + "`--log-format`" + ` for
log.format), a ` + "`SLUICE_*`" + ` environment variable (the key upper-cased
with ` + "`_`" + ` for ` + "`.`" + `: ` + "`SLUICE_LOG_RETENTION_HOURS=1`" + `), a server.properties file given
with ` + "`--config`" + `, and the default. An unknown key is reported as a warning and
ignored; an invalid value stops the broker with a message naming the key,
where it was set and what is accepted.

**Topic keys** are set per topic with ` + "`sluice topic create NAME -c key=value`" + `,
` + "`sluice topic alter-config NAME --set key=value`" + `, or any Kafka admin client
(CreateTopics, IncrementalAlterConfigs). A topic without an override takes
the cluster-wide default from the broker key in the "broker default" column.

**Group keys** are set per consumer or share group with IncrementalAlterConfigs
on the GROUP resource (type 32), before or after the group exists, and read
with DescribeConfigs. A group without an override takes the broker key in
the "broker default" column. Kafka's other group keys are refused.

`)
	b.WriteString("## Broker keys\n\n")
	b.WriteString("| key | default | accepted | environment variable | meaning |\n| --- | --- | --- | --- | --- |\n")
	// BrokerConfigDoc includes the keys that set topic defaults
	// (log.retention.hours, ...), which are broker keys too.
	for _, d := range BrokerConfigDoc() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%s` | %s |\n", d.Name, docDefault(d.Default), docCell(d.Accepted()),
			EnvName(d.Name), docMeaning(d))
	}
	b.WriteString("\n## Topic keys\n\n")
	b.WriteString("| key | default | broker default | accepted | meaning |\n| --- | --- | --- | --- | --- |\n")
	topicDefs := slices.Clone(TopicConfigs)
	slices.SortFunc(topicDefs, func(a, c Def) int { return strings.Compare(a.Name, c.Name) })
	for _, d := range topicDefs {
		brokerKey := "—"
		if d.BrokerName != "" {
			brokerKey = "`" + d.BrokerName + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", d.Name, docDefault(d.Default), brokerKey,
			docCell(d.Accepted()), docMeaning(d))
	}
	b.WriteString("\n## Group keys\n\n")
	b.WriteString("| key | default | broker default | accepted | meaning |\n| --- | --- | --- | --- | --- |\n")
	for _, d := range GroupConfigs {
		fmt.Fprintf(&b, "| `%s` | %s | `%s` | %s | %s |\n", d.Name, docDefault(d.Default), d.BrokerName,
			docCell(d.Accepted()), docMeaning(d))
	}
	return b.String()
}

// EnvName is the SLUICE_ environment variable that sets broker key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

func docDefault(v string) string {
	if v == "" {
		return "(empty)"
	}
	return "`" + docCell(v) + "`"
}

func docMeaning(d Def) string {
	m := docCell(d.Doc)
	if d.NotActedOn != "" {
		m += " **Accepted, not acted on yet:** " + docCell(d.NotActedOn) + "."
	}
	if d.Deprecated != "" {
		m += " *Deprecated: " + docCell(d.Deprecated) + ".*"
	}
	return m
}

// docCell makes s safe inside a Markdown table cell.
func docCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
