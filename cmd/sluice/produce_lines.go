package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceLines produces one record per line of in until the input ends, a
// record fails, or ctx ends (Ctrl-C: what was read is still flushed). It
// returns the input's error, if any.
//
// Lines are read on their own goroutine so that Ctrl-C is noticed even
// while a read from a terminal blocks.
func produceLines(ctx context.Context, cl *kgo.Client, p *producePlan, in io.Reader, maxLine int, res *produceResults) error {
	lines := make(chan []byte, 64)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go readLines(in, maxLine, lines, readErr, stop)
	for {
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				return <-readErr
			}
			if res.failed() {
				// Later records would land after a gap; stop as kcat does.
				return nil
			}
			res.buffered()
			cl.Produce(ctx, p.record(line), res.promise)
		}
	}
}

// readLines sends each line of in on lines, then its error (nil at EOF) on
// errc, and closes lines.
func readLines(in io.Reader, maxLine int, lines chan<- []byte, errc chan<- error, stop <-chan struct{}) {
	defer close(lines)
	sc := bufio.NewScanner(in)
	// The buffer holds a line and its newline; bufio's default would stop
	// at 64 KiB, far below what a topic takes. The scanner's limit is the
	// larger of its argument and the initial buffer's capacity, so the
	// initial buffer must not exceed it either.
	sc.Buffer(make([]byte, 0, min(64<<10, maxLine+1)), maxLine+1)
	sc.Split(scanRecordLines)
	n := 0
	for sc.Scan() {
		n++
		select {
		case lines <- bytes.Clone(sc.Bytes()):
		case <-stop:
			errc <- nil
			return
		}
	}
	err := sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		err = fmt.Errorf("line %d is longer than the topic's max.message.bytes (%d bytes)", n+1, maxLine)
	}
	errc <- err
}

// scanRecordLines is bufio.ScanLines without its dropping of a '\r' before
// the '\n': the record is the line's bytes exactly, as kcat writes them.
func scanRecordLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// record builds the record for one line.
func (p *producePlan) record(line []byte) *kgo.Record {
	r := &kgo.Record{
		Topic:     p.topic,
		Value:     line,
		Headers:   p.headers,
		Partition: max(p.partition, 0),
		// Ctrl-C stops reading but not delivery: records already read are
		// flushed, bounded by --timeout through RecordDeliveryTimeout.
		Context: context.Background(),
	}
	switch {
	case p.key != nil:
		r.Key = p.key
	case p.keyDelimiter != nil:
		if k, v, ok := bytes.Cut(line, p.keyDelimiter); ok {
			r.Key, r.Value = k, v
		}
	}
	return r
}

// produceResults gathers the client's per-record answers, which arrive on
// its own goroutine.
type produceResults struct {
	topic    string
	acksNone bool

	mu         sync.Mutex
	inFlight   int // produced and not yet answered
	records    int
	bytes      int64
	partitions map[int32]*partitionWrite
	failure    error // the first failed record's error
}

// partitionWrite is what was written to one partition.
type partitionWrite struct {
	Partition int32 `json:"partition"`
	// FirstOffset and LastOffset are -1 with --acks 0: the broker does not
	// answer, so the offsets are unknown.
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
	Records     int   `json:"records"`
}

// produceSummary is produce --json's output, also printed after a failure
// (with error set) so a script knows how much was written before it.
type produceSummary struct {
	Topic      string           `json:"topic"`
	Records    int              `json:"records"`
	Bytes      int64            `json:"bytes"` // keys and values
	Partitions []partitionWrite `json:"partitions"`
	Error      string           `json:"error,omitempty"`
}

func newProduceResults(topic string, acksNone bool) *produceResults {
	return &produceResults{topic: topic, acksNone: acksNone, partitions: map[int32]*partitionWrite{}}
}

func (res *produceResults) buffered() {
	res.mu.Lock()
	res.inFlight++
	res.mu.Unlock()
}

func (res *produceResults) failed() bool {
	res.mu.Lock()
	defer res.mu.Unlock()
	return res.failure != nil
}

// promise is the client's callback for each record; the client calls it
// serially, in order within a partition.
func (res *produceResults) promise(r *kgo.Record, err error) {
	res.mu.Lock()
	defer res.mu.Unlock()
	res.inFlight--
	if err != nil {
		if res.failure == nil {
			res.failure = res.describeFailure(r, err)
		}
		return
	}
	res.records++
	res.bytes += int64(len(r.Key) + len(r.Value))
	pw := res.partitions[r.Partition]
	if pw == nil {
		pw = &partitionWrite{Partition: r.Partition, FirstOffset: r.Offset}
		res.partitions[r.Partition] = pw
	}
	pw.LastOffset = r.Offset
	pw.Records++
	if res.acksNone {
		pw.FirstOffset, pw.LastOffset = -1, -1
	}
}

// describeFailure names where a record failed. A record that failed before
// it was given a partition (its topic is unknown, say) is named by topic.
func (res *produceResults) describeFailure(r *kgo.Record, err error) error {
	if errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("topic %q: %w", res.topic, err)
	}
	return fmt.Errorf("topic %q partition %d: %w", res.topic, r.Partition, err)
}

// summary snapshots the results, with partitions in order, the number of
// records not yet answered, and the first failure.
func (res *produceResults) summary() (produceSummary, int, error) {
	res.mu.Lock()
	defer res.mu.Unlock()
	s := produceSummary{Topic: res.topic, Records: res.records, Bytes: res.bytes, Partitions: []partitionWrite{}}
	for _, pw := range res.partitions {
		s.Partitions = append(s.Partitions, *pw)
	}
	slices.SortFunc(s.Partitions, func(a, b partitionWrite) int { return cmp.Compare(a.Partition, b.Partition) })
	return s, res.inFlight, res.failure
}

// reportProduce prints what was written, for people on stderr or as JSON
// on stdout, and returns the error that ended the produce, if any: a
// failed record first, since it stopped the reading.
func reportProduce(cmd *cobra.Command, p *producePlan, res *produceResults, readErr, flushErr error) error {
	s, unanswered, err := res.summary()
	switch {
	case err != nil:
	case readErr != nil:
		err = fmt.Errorf("reading input: %w", readErr)
	case flushErr != nil:
		err = fmt.Errorf("topic %q: %d record(s) not acknowledged within --timeout: %w", p.topic, unanswered, flushErr)
	}
	if err != nil {
		s.Error = err.Error()
	}
	if p.asJSON {
		if perr := printJSON(cmd.OutOrStdout(), s); perr != nil && err == nil {
			err = perr
		}
		return err
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "sluice: %s\n", s.text(p.acksNone))
	return err
}

// text is the summary for people: "wrote 3 records (57 bytes) to orders:
// partition 0 offsets 0-2".
func (s produceSummary) text(acksNone bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "wrote %d %s (%d bytes) to %s", s.Records, plural(s.Records, "record", "records"), s.Bytes, s.Topic)
	for i, pw := range s.Partitions {
		sep := ", "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep + "partition " + strconv.Itoa(int(pw.Partition)))
		switch {
		case acksNone:
			fmt.Fprintf(&b, " (%d, offsets unknown with --acks 0)", pw.Records)
		case pw.FirstOffset == pw.LastOffset:
			fmt.Fprintf(&b, " offset %d", pw.FirstOffset)
		default:
			fmt.Fprintf(&b, " offsets %d-%d", pw.FirstOffset, pw.LastOffset)
		}
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
