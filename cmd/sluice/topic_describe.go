package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicDescription is what `topic describe` prints, and its --json form.
type topicDescription struct {
	Topic             string                 `json:"topic"`
	ID                string                 `json:"id"`
	Internal          bool                   `json:"internal"`
	Partitions        int                    `json:"partitions"`
	ReplicationFactor int                    `json:"replication_factor"`
	SizeBytes         *int64                 `json:"size_bytes"` // nil: the brokers do not report sizes
	PartitionDetails  []partitionDescription `json:"partition_details"`
	Configs           []configDescription    `json:"configs"`
}

// partitionDescription is one partition's row. Offsets are -1 where the
// leader could not list them (no leader, say): one unreachable partition
// must not hide the others, which is when describe is most needed.
type partitionDescription struct {
	Partition      int32   `json:"partition"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Offline        []int32 `json:"offline_replicas"`
	LogStartOffset int64   `json:"log_start_offset"`
	HighWatermark  int64   `json:"high_watermark"`
	SizeBytes      *int64  `json:"size_bytes"`
	Error          string  `json:"error,omitempty"`
}

// configDescription is one config. A sensitive value is never sent by the
// broker, so Value is empty and Sensitive says why.
type configDescription struct {
	Key       string `json:"key"`
	Value     string `json:"value"`
	Source    string `json:"source"`
	Sensitive bool   `json:"sensitive,omitempty"`
}

func newTopicDescribeCmd(e *clientEnv) *cobra.Command {
	var allConfigs bool
	cmd := &cobra.Command{
		Use:   "describe TOPIC",
		Short: "Show a topic's partitions, offsets, size and configs",
		Long: "Show a topic: its partitions with leader, replicas, in-sync replicas, log\n" +
			"start offset and high watermark, its size on disk, and the configs set on it\n" +
			"(--all-configs adds those inherited from the broker and the defaults).",
		Example: "  sluice topic describe orders\n  sluice topic describe orders --all-configs --json",
		Args:    exactlyOneTopic,
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			d, err := describeTopic(ctx, adm, args[0], allConfigs)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), d)
			}
			return d.print(cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&allConfigs, "all-configs", false, "show every config, not only those set on the topic")
	cmd.ValidArgsFunction = completeTopics(e)
	return cmd
}

// describeTopic gathers a topic's metadata, offsets, sizes and configs.
// A partition whose leader cannot give its offsets, and sizes the brokers
// do not report, degrade to unknown for that partition, so describe still
// works on a cluster that is partly down, when it is needed most.
func describeTopic(ctx context.Context, adm *kadm.Client, topic string, allConfigs bool) (*topicDescription, error) {
	detail, err := describeOne(ctx, adm, topic)
	if err != nil {
		return nil, err
	}
	// The replication factor is read from the partitions' replica lists:
	// Kafka keeps no topic-level factor, and after a reassignment the
	// partitions are what is true.
	d := &topicDescription{
		Topic: topic, ID: kafkaTopicID(detail.ID), Internal: detail.IsInternal,
		Partitions: len(detail.Partitions), ReplicationFactor: detail.Partitions.NumReplicas(),
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list log start offsets of topic %q: %w", topic, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("list end offsets of topic %q: %w", topic, err)
	}
	// ListOffsets gives the log start and high watermark as consumers see
	// them; DescribeLogDirs gives bytes on disk. Kafka has no one request
	// for both, so describe asks three times.
	sizes := topicSizes(ctx, adm, topic, detail.Partitions.Numbers())
	for _, p := range detail.Partitions.Sorted() {
		pd := partitionDescription{
			Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), Offline: nonNil(p.OfflineReplicas),
			LogStartOffset: -1, HighWatermark: -1,
		}
		if p.Err != nil {
			pd.Error = p.Err.Error()
		}
		if o, ok := starts.Lookup(topic, p.Partition); ok && o.Err == nil {
			pd.LogStartOffset = o.Offset
		}
		if o, ok := ends.Lookup(topic, p.Partition); ok && o.Err == nil {
			pd.HighWatermark = o.Offset
		}
		// The topic's size is the sum of one copy per partition, not of
		// every replica: what the data takes, not what the cluster pays.
		if size, ok := sizes[p.Partition]; ok {
			pd.SizeBytes = &size
			total := size
			if d.SizeBytes != nil {
				total += *d.SizeBytes
			}
			d.SizeBytes = &total
		}
		d.PartitionDetails = append(d.PartitionDetails, pd)
	}
	d.Configs, err = topicConfigs(ctx, adm, topic, allConfigs)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// topicSizes returns each partition's size on its leader, or nothing when
// the cluster does not answer DescribeLogDirs: the size is extra
// information, not a reason to fail the whole description.
func topicSizes(ctx context.Context, adm *kadm.Client, topic string, partitions []int32) map[int32]int64 {
	// The partitions are named: an empty list asks for none of them.
	set := kadm.TopicsSet{}
	set.Add(topic, partitions...)
	dirs, err := adm.DescribeAllLogDirs(ctx, set)
	if err != nil {
		return nil
	}
	sizes := map[int32]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
			// The largest copy is the leader's, or the one furthest along; an
			// empty partition is 0 bytes, not unknown.
			if cur, seen := sizes[p.Partition]; p.Topic == topic && (!seen || p.Size > cur) {
				sizes[p.Partition] = p.Size
			}
		})
	})
	return sizes
}

func topicConfigs(ctx context.Context, adm *kadm.Client, topic string, all bool) ([]configDescription, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("describe configs of topic %q: %w", topic, err)
	}
	out := []configDescription{}
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, topicError(topic, "describe configs of", rc.Err, rc.ErrMessage)
		}
		for _, c := range rc.Configs {
			// Without --all-configs only the overrides, as kafka-configs
			// --describe shows them: the inherited dozens would bury them.
			if !all && c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				continue
			}
			out = append(out, configDescription{Key: c.Key, Value: c.MaybeValue(), Source: configSourceName(c.Source), Sensitive: c.Sensitive})
		}
	}
	slices.SortFunc(out, func(a, b configDescription) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// configSourceName says where a config's value comes from, in words. For
// a topic both dynamic broker layers read "broker (dynamic)": what matters
// here is that the topic does not set it (`cluster config describe` tells
// the layers apart).
func configSourceName(s kmsg.ConfigSource) string {
	switch s {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return "topic"
	case kmsg.ConfigSourceDynamicBrokerConfig, kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return "broker (dynamic)"
	case kmsg.ConfigSourceStaticBrokerConfig:
		return "broker"
	case kmsg.ConfigSourceDefaultConfig:
		return "default"
	}
	return strings.ToLower(s.String())
}

func (d *topicDescription) print(w io.Writer) error {
	size := "unknown"
	if d.SizeBytes != nil {
		size = humanBytes(*d.SizeBytes)
	}
	if err := printFields(w,
		[2]string{"Topic", d.Topic}, [2]string{"ID", d.ID},
		[2]string{"Partitions", strconv.Itoa(d.Partitions)},
		[2]string{"Replication factor", strconv.Itoa(d.ReplicationFactor)},
		[2]string{"Size", size}); err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows := make([][]string, 0, len(d.PartitionDetails))
	for _, p := range d.PartitionDetails {
		psize := ""
		if p.SizeBytes != nil {
			psize = humanBytes(*p.SizeBytes)
		}
		rows = append(rows, []string{strconv.Itoa(int(p.Partition)), strconv.Itoa(int(p.Leader)),
			strconv.Itoa(int(p.LeaderEpoch)), joinIDs(p.Replicas), joinIDs(p.ISR), joinIDs(p.Offline),
			strconv.FormatInt(p.LogStartOffset, 10), strconv.FormatInt(p.HighWatermark, 10), psize, p.Error})
	}
	if err := printTable(w, []string{"PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "OFFLINE", "LOG-START", "HIGH-WATERMARK", "SIZE", "ERROR"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(d.Configs) == 0 {
		_, err := fmt.Fprintln(w, "Configs: none set on the topic (--all-configs shows the inherited ones)")
		return err
	}
	crows := make([][]string, 0, len(d.Configs))
	for _, c := range d.Configs {
		crows = append(crows, []string{c.Key, c.Value, c.Source})
	}
	return printTable(w, []string{"CONFIG", "VALUE", "SOURCE"}, crows)
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

func joinIDs(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}

// humanBytes prints a byte count the way people read sizes: 0 B, 1.5 KiB.
// Binary units, as du -h and segment sizes (log.segment.bytes = 1 GiB) use;
// --json keeps the exact count.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// kafkaTopicID spells a topic id as Kafka's tools print a Uuid (URL-safe
// base64 without padding), so ids can be compared with kafka-topics.sh
// output and partition.metadata files; kadm's String uses standard base64.
func kafkaTopicID(id kadm.TopicID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }
