package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/record"
)

// The message browser's limits: one request never scans more than
// maxScanRecords records or maxScanBytes bytes of batches, and never holds
// more than one fetch response (maxFetchResponseBytes) at a time.
const (
	maxScanRecords        = 20_000
	maxScanBytes          = 32 << 20
	maxFetchResponseBytes = 1 << 20
	defaultBrowseLimit    = 50
	maxBrowseLimit        = 500
)

// A newest-first scan steps back in windows of offsets: fetches only go
// forward, so it reads a window forward and keeps its newest matches. The
// first window is small enough that, even with batches as large as a
// broker accepts (about 1 MiB each), it fits inside maxScanBytes, so every
// request makes progress; later windows are sized from the bytes per
// record seen so far to read about backwardWindowBytes each.
const (
	firstBackwardWindow = 16
	maxBackwardWindow   = 500
	backwardWindowBytes = 4 << 20
)

// nextBackwardWindow sizes the next window from the last one's bytes and
// records.
func nextBackwardWindow(bytes int64, records int) int64 {
	if records == 0 {
		return maxBackwardWindow
	}
	perRecord := max(bytes/int64(records), 1)
	return min(max(backwardWindowBytes/perRecord, firstBackwardWindow), maxBackwardWindow)
}

// browseQuery is what the message browser's form asks for.
type browseQuery struct {
	Topic     string
	Partition int32
	// From is where to start: "end" (newest), "start" (oldest), "offset"
	// or "timestamp".
	From      string
	Offset    int64
	Timestamp string // as typed: RFC 3339, 2006-01-02T15:04[:05] (UTC) or Unix ms
	// NewestFirst reads backward from the starting point; otherwise forward.
	NewestFirst bool
	Key         string
	Value       string
	Header      string // name, or name=value substring
	Limit       int
}

func (q browseQuery) filtered() bool { return q.Key != "" || q.Value != "" || q.Header != "" }

func (q browseQuery) matches(v recordView) bool {
	r := v.r
	if q.Key != "" && !bytes.Contains(r.Key, []byte(q.Key)) {
		return false
	}
	if q.Value != "" && !bytes.Contains(r.Value, []byte(q.Value)) {
		return false
	}
	if q.Header == "" {
		return true
	}
	name, value, withValue := strings.Cut(q.Header, "=")
	for _, h := range r.Headers {
		if h.Key == name && (!withValue || strings.Contains(string(h.Value), value)) {
			return true
		}
	}
	return false
}

// parseTimestamp accepts Unix milliseconds, RFC 3339, or the
// datetime-local input's format, read as UTC.
func parseTimestamp(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMilli(), nil
		}
	}
	return 0, fmt.Errorf("timestamp %q: want Unix milliseconds, RFC 3339 or 2006-01-02T15:04:05 (UTC)", s)
}

// browseResult is one page of the browser.
type browseResult struct {
	Records        []shownRecord
	LogStartOffset int64
	HighWatermark  int64
	Scanned        int   // records read, matching or not
	ScannedBytes   int64 // batch bytes fetched
	// StoppedBy says why the scan ended before reaching the end of the
	// log in its direction: "" when it did not stop early.
	StoppedBy string
	// Next is the offset a "more" link continues from, -1 when the scan
	// reached the end of the log.
	Next int64
}

// maxDecompressedBatchBytes bounds one batch's records once decompressed:
// a 1 MiB batch of zeros can inflate to gigabytes, and the browser must
// not allocate that because a producer sent it.
const maxDecompressedBatchBytes = 8 << 20

// recordView is a record as decoded from a fetch response. Its slices alias
// buffers that are reused for the next record: whatever must outlive the
// visit is copied (showRecord does).
type recordView struct {
	offset      int64
	timestampMs int64
	r           *record.Record
}

// partitionReader fetches one partition from its leader, with raw Fetch
// requests so the console controls exactly how many bytes it holds, and
// decodes batches with internal/record (CRC checked, decompression bounded).
type partitionReader struct {
	client    *kgo.Client
	topic     string
	partition int32
	leader    int32
}

// fetch reads the records at offsets [from, until) that one Fetch of at
// most maxFetchResponseBytes returns and visits each in order until visit
// returns false. next is the offset after the last batch decoded (from
// when nothing came back); size is the response's batch bytes.
func (p *partitionReader) fetch(ctx context.Context, from, until int64, visit func(recordView) bool) (next, size int64, err error) {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0
	req.MinBytes = 0
	req.MaxBytes = maxFetchResponseBytes
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = p.topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = p.partition
	rp.FetchOffset = from
	rp.PartitionMaxBytes = maxFetchResponseBytes
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := p.client.Broker(int(p.leader)).RetriableRequest(ctx, req)
	if err != nil {
		return from, 0, fmt.Errorf("fetch %s-%d at %d: %w", p.topic, p.partition, from, err)
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return from, 0, fmt.Errorf("fetch %s-%d at %d: %w", p.topic, p.partition, from, err)
	}
	for _, t := range resp.Topics {
		for _, part := range t.Partitions {
			if t.Topic != p.topic || part.Partition != p.partition {
				continue
			}
			if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
				return from, 0, fmt.Errorf("fetch %s-%d at %d: %w", p.topic, p.partition, from, err)
			}
			next, err := visitBatches(part.RecordBatches, from, until, visit)
			if err != nil {
				err = fmt.Errorf("fetch %s-%d at %d: %w", p.topic, p.partition, from, err)
			}
			return next, int64(len(part.RecordBatches)), err
		}
	}
	return from, 0, fmt.Errorf("fetch %s-%d at %d: no answer for the partition", p.topic, p.partition, from)
}

// visitBatches decodes the batches in data and visits their records with
// offsets in [from, until), in order, until visit returns false. A batch cut
// off at the end of data (a fetch response may end inside one) is left for
// the next fetch; control batches (transaction markers) are skipped. It
// returns the offset after the last whole batch.
func visitBatches(data []byte, from, until int64, visit func(recordView) bool) (int64, error) {
	next := from
	for len(data) > 0 {
		batch, rest, h, err := record.NextBatch(data)
		if errors.Is(err, record.ErrTruncated) {
			break
		}
		if err != nil {
			return next, err
		}
		data = rest
		if _, err := record.ValidateBatch(batch); err != nil {
			return next, err
		}
		stopped := errors.New("stop")
		if !h.IsControl() {
			err = record.Records(batch, maxDecompressedBatchBytes, func(r *record.Record) error {
				off := h.Offset(r)
				if off < from || off >= until {
					return nil
				}
				if !visit(recordView{offset: off, timestampMs: h.Timestamp(r), r: r}) {
					return stopped
				}
				return nil
			})
		}
		if errors.Is(err, stopped) {
			return next, nil
		}
		if err != nil {
			return next, err
		}
		next = max(next, h.LastOffset()+1)
	}
	return next, nil
}

// scan holds one browse request's progress against its caps.
type scan struct {
	q      browseQuery
	reader *partitionReader
	res    *browseResult
}

// capped reports whether a cap stops the scan, and records which.
func (s *scan) capped() bool {
	switch {
	case s.res.Scanned >= maxScanRecords:
		s.res.StoppedBy = fmt.Sprintf("the scan cap of %d records", maxScanRecords)
	case s.res.ScannedBytes >= maxScanBytes:
		s.res.StoppedBy = fmt.Sprintf("the scan cap of %s", formatBytes(maxScanBytes))
	default:
		return false
	}
	return true
}

// readRange reads offsets [from, until) forward, handing each record to
// keep, which returns false to stop. It returns the offset it stopped at:
// the next offset to read.
func (s *scan) readRange(ctx context.Context, from, until int64, keep func(recordView) bool) (int64, error) {
	for from < until {
		if s.capped() {
			return from, nil
		}
		stopAt := int64(-1)
		next, size, err := s.reader.fetch(ctx, from, until, func(v recordView) bool {
			if s.capped() {
				// One fetch can hold more records than the cap left.
				stopAt = v.offset
				return false
			}
			s.res.Scanned++
			if !keep(v) {
				stopAt = v.offset + 1
				return false
			}
			return true
		})
		s.res.ScannedBytes += size
		switch {
		case err != nil:
			return from, err
		case stopAt >= 0:
			return stopAt, nil
		case next <= from:
			// Nothing readable at from below the high watermark: asking
			// again would get the same empty answer forever.
			return from, errors.New("the broker returned no records below the high watermark at offset " + strconv.FormatInt(from, 10))
		}
		from = next
	}
	return until, nil
}

// forward reads from start toward the high watermark until limit records
// match.
func (s *scan) forward(ctx context.Context, start int64) error {
	s.res.Next = -1
	stop, err := s.readRange(ctx, start, s.res.HighWatermark, func(v recordView) bool {
		if s.q.matches(v) {
			s.res.Records = append(s.res.Records, showRecord(v))
		}
		return len(s.res.Records) < s.q.Limit
	})
	if stop < s.res.HighWatermark {
		s.res.Next = stop
	}
	return err
}

// backward reads windows of offsets below end (exclusive), newest window
// first, keeping each window's matches newest first, until limit records
// match or the log start is reached.
func (s *scan) backward(ctx context.Context, end int64) error {
	s.res.Next = -1
	window := int64(firstBackwardWindow)
	for end > s.res.LogStartOffset {
		if s.capped() {
			s.res.Next = end - 1
			return nil
		}
		from := max(s.res.LogStartOffset, end-window)
		bytesBefore, scannedBefore := s.res.ScannedBytes, s.res.Scanned
		// Matches are kept as shown (each value cut to maxShownBytes), so
		// a window holds no fetch response once the next one is read.
		var matches []shownRecord
		stop, err := s.readRange(ctx, from, end, func(v recordView) bool {
			if s.q.matches(v) {
				matches = append(matches, showRecord(v))
			}
			return true
		})
		if err != nil {
			return err
		}
		if stop < end {
			// A cap cut the window short: its newest records were not
			// read, so none of it is shown and "more" starts it again.
			s.res.Next = end - 1
			return nil
		}
		for i := len(matches) - 1; i >= 0; i-- {
			s.res.Records = append(s.res.Records, matches[i])
			if len(s.res.Records) == s.q.Limit {
				s.res.Next = matches[i].Offset - 1
				return nil
			}
		}
		end = from
		window = nextBackwardWindow(s.res.ScannedBytes-bytesBefore, s.res.Scanned-scannedBefore)
	}
	return nil
}
