package console

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

const (
	topicsPerPage     = 100
	partitionsPerPage = 200
)

type topicRow struct {
	Name              string
	Internal          bool
	Partitions        int
	ReplicationFactor int
	UnderReplicated   int
	Offline           int
	SizeBytes         int64 // -1 before the first sample
	Rate              TopicRate
	Err               string
}

type topicsData struct {
	Filter string
	Rows   []topicRow
	Pager  pager
}

func (c *Console) topicsPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	filter := strings.TrimSpace(r.URL.Query().Get("q"))
	data := topicsData{Filter: filter}
	topics, err := c.admin.ListTopicsWithInternal(ctx)
	if err == nil {
		names := slices.Sorted(func(yield func(string) bool) {
			for name := range topics {
				if strings.Contains(name, filter) && !yield(name) {
					return
				}
			}
		})
		data.Pager = newPager(r, len(names), topicsPerPage)
		for _, name := range names[data.Pager.First:data.Pager.Last] {
			data.Rows = append(data.Rows, c.topicRowOf(topics[name]))
		}
	}
	c.render(w, statusFor(err), "topics", page{Title: "Topics", Nav: "topics", Error: errText(err), Data: data})
}

func (c *Console) topicRowOf(t kadm.TopicDetail) topicRow {
	row := topicRow{Name: t.Topic, Internal: t.IsInternal, Partitions: len(t.Partitions), Err: errText(t.Err)}
	for _, p := range t.Partitions {
		row.ReplicationFactor = max(row.ReplicationFactor, len(p.Replicas))
		if p.Leader < 0 {
			row.Offline++
		}
		if len(p.ISR) < len(p.Replicas) {
			row.UnderReplicated++
		}
	}
	row.Rate, row.SizeBytes, _ = c.samples.topicStats(t.Topic)
	return row
}

type partitionRow struct {
	Partition      int32
	Leader         int32
	LeaderEpoch    int32
	Replicas       []int32
	ISR            []int32
	LogStartOffset int64
	HighWatermark  int64
	SizeBytes      int64
	Err            string
}

type configRow struct {
	Key       string
	Value     string
	Source    string
	Sensitive bool
	// Dynamic is a value set on this topic, which can be deleted to fall
	// back to the broker's default.
	Dynamic bool
}

type topicData struct {
	Topic      string
	Summary    topicRow
	Partitions []partitionRow
	Pager      pager
	Configs    []configRow
	// BrowseQuery opens the message browser on this topic's first
	// partition, newest first.
	BrowseQuery url.Values
}

func (c *Console) topicPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	data, err := c.readTopic(ctx, r, r.PathValue("topic"))
	c.render(w, statusFor(err), "topic", page{Title: "Topic " + data.Topic, Nav: "topics",
		Error: errText(err), Notice: r.URL.Query().Get("notice"), Data: data})
}

// readTopic reads one topic's partitions (one page of them), offsets, sizes
// and configs. It returns what it could read along with the first error.
func (c *Console) readTopic(ctx context.Context, r *http.Request, topic string) (topicData, error) {
	data := topicData{Topic: topic, BrowseQuery: url.Values{"partition": {"0"}}}
	md, err := c.admin.Metadata(ctx, topic)
	if err != nil {
		return data, fmt.Errorf("metadata: %w", err)
	}
	detail, ok := md.Topics[topic]
	if !ok || detail.Err != nil {
		return data, fmt.Errorf("topic %q: %w", topic, cmp.Or(detail.Err, errors.New("not in metadata")))
	}
	data.Summary = c.topicRowOf(detail)
	parts := detail.Partitions.Sorted()
	data.Pager = newPager(r, len(parts), partitionsPerPage)
	shown := parts[data.Pager.First:data.Pager.Last]
	numbers := make([]int32, len(shown))
	set := kadm.TopicsSet{topic: {}}
	for i, p := range shown {
		numbers[i] = p.Partition
		set[topic][p.Partition] = struct{}{}
	}
	starts, errStart := c.listOffsets(ctx, topic, numbers, listEarliest)
	ends, errEnd := c.listOffsets(ctx, topic, numbers, listLatest)
	dirs, errDirs := c.admin.DescribeAllLogDirs(ctx, set)
	sizes := partitionSizes(dirs)[topic]
	for _, p := range shown {
		row := partitionRow{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: p.Replicas, ISR: p.ISR, LogStartOffset: -1, HighWatermark: -1, SizeBytes: -1, Err: errText(p.Err)}
		if o, ok := starts[p.Partition]; ok {
			row.LogStartOffset = o
		}
		if o, ok := ends[p.Partition]; ok {
			row.HighWatermark = o
		}
		if size, ok := sizes[p.Partition]; ok {
			row.SizeBytes = size
		}
		data.Partitions = append(data.Partitions, row)
	}
	configs, errConfigs := c.readTopicConfigs(ctx, topic)
	data.Configs = configs
	return data, errors.Join(errStart, errEnd, errDirs, errConfigs)
}

func (c *Console) readTopicConfigs(ctx context.Context, topic string) ([]configRow, error) {
	described, err := c.admin.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}
	rc, err := described.On(topic, nil)
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}
	if rc.Err != nil {
		return nil, fmt.Errorf("describe configs: %w %s", rc.Err, rc.ErrMessage)
	}
	rows := make([]configRow, 0, len(rc.Configs))
	for _, cfg := range rc.Configs {
		rows = append(rows, configRow{Key: cfg.Key, Value: cfg.MaybeValue(), Source: cfg.Source.String(),
			Sensitive: cfg.Sensitive, Dynamic: cfg.Source.String() == "DYNAMIC_TOPIC_CONFIG"})
	}
	slices.SortFunc(rows, func(a, b configRow) int { return strings.Compare(a.Key, b.Key) })
	return rows, nil
}

// alterTopicConfig sets or deletes one topic config with
// IncrementalAlterConfigs. The broker validates the value; its error is
// shown on the topic page.
func (c *Console) alterTopicConfig(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	topic := r.PathValue("topic")
	key := strings.TrimSpace(r.PostFormValue("key"))
	value := r.PostFormValue("value")
	op, alter := "set", kadm.AlterConfig{Op: kadm.SetConfig, Name: key, Value: &value}
	if r.PostFormValue("op") == "delete" {
		op, alter = "delete", kadm.AlterConfig{Op: kadm.DeleteConfig, Name: key}
	}
	err := c.applyTopicConfig(ctx, topic, alter)
	if err == nil {
		c.log.Info("console: topic config changed", "topic", topic, "key", key, "op", op, "value", derefString(alter.Value))
		notice := fmt.Sprintf("%s set to %q", key, value)
		if alter.Op == kadm.DeleteConfig {
			notice = key + " reset to its default"
		}
		http.Redirect(w, r, "/topics/"+url.PathEscape(topic)+"?notice="+url.QueryEscape(notice), http.StatusSeeOther)
		return
	}
	data, readErr := c.readTopic(ctx, r, topic)
	c.render(w, http.StatusBadRequest, "topic", page{Title: "Topic " + topic, Nav: "topics",
		Error: errors.Join(err, readErr).Error(), Data: data})
}

func (c *Console) applyTopicConfig(ctx context.Context, topic string, alter kadm.AlterConfig) error {
	if alter.Name == "" {
		return errors.New("no config key given")
	}
	resps, err := c.admin.AlterTopicConfigs(ctx, []kadm.AlterConfig{alter}, topic)
	if err != nil {
		return fmt.Errorf("alter %s: %w", alter.Name, err)
	}
	resp, err := resps.On(topic, nil)
	if err != nil {
		return fmt.Errorf("alter %s: %w", alter.Name, err)
	}
	if resp.Err != nil {
		msg := resp.ErrMessage
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("the broker refused %s=%q: %w%s", alter.Name, derefString(alter.Value), resp.Err, msg)
	}
	return nil
}
