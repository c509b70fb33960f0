package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxProduceBytes caps a record produced from the browser (key, value and
// headers together).
const maxProduceBytes = 1 << 20

// explicitPartitionKey marks, in a record's context, a partition the user
// chose; records without it are partitioned by key as Kafka's default
// partitioner does.
type explicitPartitionKey struct{}

type explicitOrKeyPartitioner struct{ byKey kgo.Partitioner }

func (p explicitOrKeyPartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return explicitOrKeyTopic{p.byKey.ForTopic(topic)}
}

type explicitOrKeyTopic struct{ byKey kgo.TopicPartitioner }

func explicitPartition(r *kgo.Record) (int, bool) {
	if r.Context == nil {
		return 0, false
	}
	p, ok := r.Context.Value(explicitPartitionKey{}).(int)
	return p, ok
}

func (t explicitOrKeyTopic) RequiresConsistency(r *kgo.Record) bool {
	if _, ok := explicitPartition(r); ok {
		return true
	}
	return t.byKey.RequiresConsistency(r)
}

// Partition returns the chosen partition; one past the topic's partitions
// is clamped by kgo's contract (n is the count), so the handler checks the
// range first.
func (t explicitOrKeyTopic) Partition(r *kgo.Record, n int) int {
	if p, ok := explicitPartition(r); ok {
		return p
	}
	return t.byKey.Partition(r, n)
}

// OnNewBatch keeps the sticky partitioner's behaviour for keyless records.
func (t explicitOrKeyTopic) OnNewBatch() {
	if b, ok := t.byKey.(kgo.TopicPartitionerOnNewBatch); ok {
		b.OnNewBatch()
	}
}

type produceForm struct {
	Topic     string
	Partition string
	Key       string
	Value     string
	Headers   string // one name=value per line
}

type produceData struct {
	Form   produceForm
	Topics []string
}

func (c *Console) producePage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	form := produceForm{Topic: r.URL.Query().Get("topic")}
	topics, err := c.admin.ListTopics(ctx)
	data := produceData{Form: form, Topics: capChoices(topics.Names())}
	c.render(w, statusFor(err), "produce", page{Title: "Produce", Nav: "produce", Error: errText(err),
		Notice: r.URL.Query().Get("notice"), Data: data})
}

// produceRecord produces one record synchronously (acks=all, the client's
// default) and reports where it landed.
func (c *Console) produceRecord(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	form := produceForm{Topic: strings.TrimSpace(r.PostFormValue("topic")), Partition: strings.TrimSpace(r.PostFormValue("partition")),
		Key: r.PostFormValue("key"), Value: r.PostFormValue("value"), Headers: r.PostFormValue("headers")}
	rec, err := c.recordOf(ctx, form)
	if err == nil {
		err = c.client.ProduceSync(ctx, rec).FirstErr()
	}
	if err != nil {
		topics, _ := c.admin.ListTopics(ctx)
		c.render(w, http.StatusBadRequest, "produce", page{Title: "Produce", Nav: "produce",
			Error: "produce: " + err.Error(), Data: produceData{Form: form, Topics: capChoices(topics.Names())}})
		return
	}
	c.log.Info("console: record produced", "topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
	notice := fmt.Sprintf("produced to %s-%d at offset %d", rec.Topic, rec.Partition, rec.Offset)
	http.Redirect(w, r, "/produce?topic="+url.QueryEscape(rec.Topic)+"&notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

func (c *Console) recordOf(ctx context.Context, f produceForm) (*kgo.Record, error) {
	if f.Topic == "" {
		return nil, errors.New("no topic given")
	}
	rec := &kgo.Record{Topic: f.Topic, Value: []byte(f.Value), Context: ctx}
	if f.Key != "" {
		rec.Key = []byte(f.Key)
	}
	for line := range strings.Lines(f.Headers) {
		line = strings.TrimRight(line, "\r\n")
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("header line %q: want name=value", line)
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: name, Value: []byte(value)})
	}
	if f.Partition == "" {
		return rec, nil
	}
	p, err := strconv.Atoi(f.Partition)
	if err != nil || p < 0 {
		return nil, fmt.Errorf("partition %q: want a number ≥ 0", f.Partition)
	}
	parts, err := c.partitionsOf(ctx, f.Topic)
	if err != nil {
		return nil, err
	}
	if p >= len(parts) {
		return nil, fmt.Errorf("partition %d: %s has %d partitions", p, f.Topic, len(parts))
	}
	rec.Context = context.WithValue(ctx, explicitPartitionKey{}, p)
	return rec, nil
}
