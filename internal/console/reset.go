package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

// maxShownResetRows caps the preview table; the reset itself covers every
// partition, and the page says how many.
const maxShownResetRows = 500

// resetQuery is an offset reset as the form asks for it.
type resetQuery struct {
	Group     string
	Mode      string // earliest, latest, timestamp or offset
	Topic     string // empty: every topic the group has commits for
	Partition int32  // -1: every partition
	Value     string // the timestamp or offset, as typed
}

func (q resetQuery) values() url.Values {
	v := url.Values{"mode": {q.Mode}, "topic": {q.Topic}, "value": {q.Value}}
	if q.Partition >= 0 {
		v.Set("partition", strconv.Itoa(int(q.Partition)))
	}
	return v
}

func parseResetQuery(group string, get func(string) string) (resetQuery, error) {
	q := resetQuery{Group: group, Mode: get("mode"), Topic: strings.TrimSpace(get("topic")), Partition: -1, Value: strings.TrimSpace(get("value"))}
	switch q.Mode {
	case "earliest", "latest":
	case "timestamp":
		if _, err := parseTimestamp(q.Value); err != nil {
			return q, fmt.Errorf("%w: %w", err, errBadQuery)
		}
	case "offset":
		if o, err := strconv.ParseInt(q.Value, 10, 64); err != nil || o < 0 {
			return q, fmt.Errorf("offset %q: want a number ≥ 0: %w", q.Value, errBadQuery)
		}
	default:
		return q, fmt.Errorf("mode %q: want earliest, latest, timestamp or offset: %w", q.Mode, errBadQuery)
	}
	if s := strings.TrimSpace(get("partition")); s != "" {
		p, err := strconv.ParseInt(s, 10, 32)
		if err != nil || p < 0 {
			return q, fmt.Errorf("partition %q: %w", s, errBadQuery)
		}
		q.Partition = int32(p)
	}
	return q, nil
}

type resetRow struct {
	Topic     string
	Partition int32
	Current   int64 // -1: no commit
	New       int64
}

type resetData struct {
	Query     resetQuery
	Hidden    url.Values // the query, carried by the confirmation form
	State     string
	Members   int
	Rows      []resetRow
	Total     int
	Truncated bool
}

// resetPreviewPage shows what a reset would commit, with a confirmation
// form that POSTs it. Nothing changes until that POST.
func (c *Console) resetPreviewPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	q, err := parseResetQuery(r.PathValue("group"), r.URL.Query().Get)
	data := resetData{Query: q, Hidden: q.values()}
	if err == nil {
		data, err = c.planReset(ctx, q)
	}
	status := statusFor(err)
	if errors.Is(err, errBadQuery) {
		status = http.StatusBadRequest
	}
	c.render(w, status, "reset", page{Title: "Reset offsets of " + q.Group, Nav: "groups", Error: errText(err), Data: data})
}

// resetOffsets commits the planned offsets, computed again now. The group
// coordinator refuses a commit from outside the group while it has
// members (Kafka's rule); its error is shown.
func (c *Console) resetOffsets(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	q, err := parseResetQuery(r.PathValue("group"), r.PostFormValue)
	data := resetData{Query: q, Hidden: q.values()}
	var targets kadm.Offsets
	if err == nil {
		data, targets, err = c.planResetOffsets(ctx, q)
	}
	if err == nil {
		err = c.commitReset(ctx, q.Group, targets)
	}
	if err != nil {
		c.render(w, http.StatusBadRequest, "reset", page{Title: "Reset offsets of " + q.Group, Nav: "groups", Error: errText(err), Data: data})
		return
	}
	c.log.Info("console: group offsets reset", "group", q.Group, "mode", q.Mode, "topic", q.Topic,
		"partition", q.Partition, "value", q.Value, "partitions", data.Total)
	notice := fmt.Sprintf("reset %d partitions to %s", data.Total, q.Mode)
	http.Redirect(w, r, "/groups/"+url.PathEscape(q.Group)+"?notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

func (c *Console) commitReset(ctx context.Context, group string, targets kadm.Offsets) error {
	if len(targets) == 0 {
		return errors.New("no partitions to reset")
	}
	resps, err := c.admin.CommitOffsets(ctx, group, targets)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := resps.Error(); err != nil {
		return fmt.Errorf("the group coordinator refused the commit (a group's offsets can only be reset while it is Empty): %w", err)
	}
	return nil
}

func (c *Console) planReset(ctx context.Context, q resetQuery) (resetData, error) {
	data, _, err := c.planResetOffsets(ctx, q)
	return data, err
}

// planResetOffsets computes the offsets a reset commits and the preview
// rows: earliest and latest are the log start offsets and high
// watermarks, a timestamp the first offset at or after it (the high
// watermark when there is none), and an offset is clamped to the log.
func (c *Console) planResetOffsets(ctx context.Context, q resetQuery) (resetData, kadm.Offsets, error) {
	data := resetData{Query: q, Hidden: q.values()}
	described, err := c.admin.DescribeGroups(ctx, q.Group)
	if err != nil {
		return data, nil, fmt.Errorf("describe group: %w", err)
	}
	g := described[q.Group]
	data.State, data.Members = g.State, len(g.Members)
	current, err := c.admin.FetchOffsets(ctx, q.Group)
	if err != nil {
		return data, nil, fmt.Errorf("committed offsets: %w", err)
	}
	topics := []string{q.Topic}
	if q.Topic == "" {
		topics = current.Partitions().Topics()
	}
	if len(topics) == 0 {
		return data, nil, fmt.Errorf("group %q has no committed offsets: name a topic to reset: %w", q.Group, errBadQuery)
	}
	listed, err := c.resetOffsetsFor(ctx, q, topics)
	if err != nil {
		return data, nil, err
	}
	targets := kadm.Offsets{}
	for _, o := range listed {
		if q.Partition >= 0 && o.Partition != q.Partition {
			continue
		}
		targets.AddOffset(o.Topic, o.Partition, o.Offset, -1)
	}
	for _, o := range targets.Sorted() {
		data.Total++
		if len(data.Rows) == maxShownResetRows {
			data.Truncated = true
			continue
		}
		row := resetRow{Topic: o.Topic, Partition: o.Partition, Current: -1, New: o.At}
		if cur, ok := current.Lookup(o.Topic, o.Partition); ok && cur.Err == nil {
			row.Current = cur.At
		}
		data.Rows = append(data.Rows, row)
	}
	if data.Total == 0 {
		return data, nil, fmt.Errorf("no partition matches topic %q partition %d: %w", q.Topic, q.Partition, errBadQuery)
	}
	return data, targets, nil
}

// resetOffsetsFor lists the target offset of every partition of topics.
func (c *Console) resetOffsetsFor(ctx context.Context, q resetQuery, topics []string) ([]kadm.ListedOffset, error) {
	var listed kadm.ListedOffsets
	var err error
	switch q.Mode {
	case "earliest":
		listed, err = c.admin.ListStartOffsets(ctx, topics...)
	case "latest", "offset":
		listed, err = c.admin.ListEndOffsets(ctx, topics...)
	case "timestamp":
		ms, _ := parseTimestamp(q.Value) // validated by parseResetQuery
		listed, err = c.admin.ListOffsetsAfterMilli(ctx, ms, topics...)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	var starts kadm.ListedOffsets
	if q.Mode == "offset" {
		if starts, err = c.admin.ListStartOffsets(ctx, topics...); err == nil {
			err = starts.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("list offsets: %w", err)
		}
	}
	var out []kadm.ListedOffset
	listed.Each(func(o kadm.ListedOffset) {
		if q.Mode == "offset" {
			want, _ := strconv.ParseInt(q.Value, 10, 64)
			start, _ := starts.Lookup(o.Topic, o.Partition)
			o.Offset = min(max(want, start.Offset), o.Offset)
		}
		out = append(out, o)
	})
	return out, nil
}
