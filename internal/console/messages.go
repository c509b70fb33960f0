package console

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// maxShownBytes caps how much of one key, value or header is rendered; the
// rest is summarised by its length.
const maxShownBytes = 8 << 10

// shownValue is a key, value or header value ready for the page.
type shownValue struct {
	Kind      string // null, empty, text, json or hex
	Text      string
	Size      int
	Truncated bool
}

type shownHeader struct {
	Key   string
	Value shownValue
}

type shownRecord struct {
	Offset      int64
	TimestampMs int64
	Key         shownValue
	Value       shownValue
	Headers     []shownHeader
}

// showRecord copies what the page shows out of v, whose slices are reused
// once the visit returns.
func showRecord(v recordView) shownRecord {
	r := v.r
	s := shownRecord{Offset: v.offset, TimestampMs: v.timestampMs, Key: showBytes(r.Key), Value: showBytes(r.Value)}
	for _, h := range r.Headers {
		s.Headers = append(s.Headers, shownHeader{Key: h.Key, Value: showBytes(h.Value)})
	}
	return s
}

// showBytes picks how to render b: pretty JSON when it parses as JSON,
// text when it is printable UTF-8, otherwise a hex dump.
func showBytes(b []byte) shownValue {
	switch {
	case b == nil:
		return shownValue{Kind: "null"}
	case len(b) == 0:
		return shownValue{Kind: "empty"}
	}
	v := shownValue{Size: len(b)}
	if len(b) <= maxShownBytes && json.Valid(b) && (b[0] == '{' || b[0] == '[') {
		var pretty bytes.Buffer
		if json.Indent(&pretty, b, "", "  ") == nil {
			v.Kind, v.Text = "json", pretty.String()
			return v
		}
	}
	shown := b
	if len(shown) > maxShownBytes {
		shown, v.Truncated = shown[:maxShownBytes], true
	}
	if printable(shown) {
		v.Kind, v.Text = "text", string(shown)
		return v
	}
	v.Kind, v.Text = "hex", hex.Dump(shown)
	return v
}

// printable reports whether b is UTF-8 text without control characters
// other than tab and newlines. A cut multi-byte rune at the end counts as
// text.
func printable(b []byte) bool {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 {
			return len(b) < utf8.UTFMax && !utf8.FullRune(b)
		}
		if !unicode.IsPrint(r) && r != '\n' && r != '\r' && r != '\t' {
			return false
		}
		b = b[size:]
	}
	return true
}

type messagesData struct {
	Query browseQuery
	// Partitions are offered as a select when there are at most
	// maxChoices of them; PartitionCount bounds the number input otherwise.
	Partitions     []int32
	PartitionCount int
	Result         browseResult
	// More continues the scan from where it stopped; empty at the end.
	More url.Values
	// Searched is false when the form has not been submitted yet.
	Searched bool
}

func (c *Console) messagesPage(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.requestContext(r)
	defer cancel()
	q, err := parseBrowseQuery(r)
	data := messagesData{Query: q, Searched: r.URL.Query().Has("from")}
	if err == nil {
		var parts []int32
		parts, err = c.partitionsOf(ctx, q.Topic)
		data.Partitions, data.PartitionCount = capChoices(parts), len(parts)
	}
	if err == nil && data.Searched {
		data.Result, err = c.browse(ctx, q)
		if err == nil && data.Result.Next >= 0 {
			more := r.URL.Query()
			more.Set("from", "offset")
			more.Set("offset", strconv.FormatInt(data.Result.Next, 10))
			data.More = more
		}
	}
	status := statusFor(err)
	if errors.Is(err, errBadQuery) {
		status = http.StatusBadRequest
	}
	c.render(w, status, "messages", page{Title: "Messages in " + q.Topic, Nav: "topics", Error: errText(err), Data: data})
}

var errBadQuery = errors.New("bad query")

func parseBrowseQuery(r *http.Request) (browseQuery, error) {
	v := r.URL.Query()
	q := browseQuery{Topic: r.PathValue("topic"), From: v.Get("from"), Timestamp: v.Get("timestamp"),
		NewestFirst: v.Get("order") != "oldest", Key: v.Get("key"), Value: v.Get("value"), Header: v.Get("header"), Limit: defaultBrowseLimit}
	if q.From == "" {
		q.From = "end"
	}
	if s := v.Get("partition"); s != "" {
		p, err := strconv.ParseInt(s, 10, 32)
		if err != nil || p < 0 {
			return q, fmt.Errorf("partition %q: %w", s, errBadQuery)
		}
		q.Partition = int32(p)
	}
	if s := v.Get("offset"); s != "" {
		o, err := strconv.ParseInt(s, 10, 64)
		if err != nil || o < 0 {
			return q, fmt.Errorf("offset %q: %w", s, errBadQuery)
		}
		q.Offset = o
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return q, fmt.Errorf("limit %q: %w", s, errBadQuery)
		}
		q.Limit = min(n, maxBrowseLimit)
	}
	switch q.From {
	case "end", "start", "offset", "timestamp":
	default:
		return q, fmt.Errorf("from %q: want end, start, offset or timestamp: %w", q.From, errBadQuery)
	}
	return q, nil
}

func (c *Console) partitionsOf(ctx context.Context, topic string) ([]int32, error) {
	md, err := c.admin.Metadata(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	t, ok := md.Topics[topic]
	if !ok || t.Err != nil {
		return nil, fmt.Errorf("topic %q: %w", topic, errors.Join(t.Err, errors.New("not found")))
	}
	return t.Partitions.Numbers(), nil
}

// browse resolves the starting offset and scans in the asked direction.
func (c *Console) browse(ctx context.Context, q browseQuery) (browseResult, error) {
	res := browseResult{Next: -1}
	md, err := c.admin.Metadata(ctx, q.Topic)
	if err != nil {
		return res, fmt.Errorf("metadata: %w", err)
	}
	p, ok := md.Topics[q.Topic].Partitions[q.Partition]
	if !ok || p.Err != nil || p.Leader < 0 {
		return res, fmt.Errorf("%s-%d has no leader to read from: %w", q.Topic, q.Partition, errors.Join(p.Err, errors.New("unknown or offline partition")))
	}
	one := []int32{q.Partition}
	starts, err := c.listOffsets(ctx, q.Topic, one, listEarliest)
	if err != nil {
		return res, fmt.Errorf("log start offset: %w", err)
	}
	ends, err := c.listOffsets(ctx, q.Topic, one, listLatest)
	if err != nil {
		return res, fmt.Errorf("high watermark: %w", err)
	}
	res.LogStartOffset, res.HighWatermark = starts[q.Partition], ends[q.Partition]
	from, err := c.startOffset(ctx, q, res)
	if err != nil {
		return res, err
	}
	s := &scan{q: q, res: &res, reader: &partitionReader{client: c.client, topic: q.Topic, partition: q.Partition, leader: p.Leader}}
	if q.NewestFirst {
		err = s.backward(ctx, from)
	} else {
		err = s.forward(ctx, from)
	}
	return res, err
}

// startOffset is where the scan begins: for a forward scan the first offset
// read, for a backward scan the offset just past the first one read (so
// "from offset X" includes X either way, and "from timestamp T" newest
// first shows the records before T).
func (c *Console) startOffset(ctx context.Context, q browseQuery, res browseResult) (int64, error) {
	clamp := func(o int64) int64 { return min(max(o, res.LogStartOffset), res.HighWatermark) }
	switch q.From {
	case "start":
		return res.LogStartOffset, nil
	case "offset":
		if q.NewestFirst {
			return clamp(q.Offset + 1), nil
		}
		return clamp(q.Offset), nil
	case "timestamp":
		ms, err := parseTimestamp(q.Timestamp)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", err, errBadQuery)
		}
		listed, err := c.listOffsets(ctx, q.Topic, []int32{q.Partition}, ms)
		if err != nil {
			return 0, fmt.Errorf("offset for timestamp: %w", err)
		}
		o, ok := listed[q.Partition]
		if !ok || o < 0 {
			return res.HighWatermark, nil // nothing at or after the time
		}
		return clamp(o), nil
	default: // "end"
		if !q.NewestFirst {
			// Oldest first from the end: the last limit records, in order.
			return clamp(res.HighWatermark - int64(q.Limit)), nil
		}
		return res.HighWatermark, nil
	}
}
