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

// produceLines produces one record per record of input (a line, or what
// -D, --format or --value-file make one) until the input ends, a record
// fails, or ctx ends (Ctrl-C: what was read is still flushed). It returns
// the input's error, if any.
//
// Records are read on their own goroutine so that Ctrl-C is noticed even
// while a read from a terminal blocks.
func produceLines(ctx context.Context, cl *kgo.Client, p *producePlan, in io.Reader, maxLine int, res *produceResults) error {
	// A small channel: the client's own buffer (produceBufferedBytes) is
	// where records wait; this only decouples the reader from Produce.
	records := make(chan *kgo.Record, 64)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(records)
		readErr <- p.readRecords(in, maxLine, func(r *kgo.Record) bool {
			select {
			case records <- r:
				return true
			case <-stop:
				return false
			}
		})
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case r, ok := <-records:
			if !ok {
				return <-readErr
			}
			if res.failed() {
				// Later records would land after a gap; stop as kcat does.
				return nil
			}
			res.buffered()
			cl.Produce(ctx, r, res.promise)
		}
	}
}

// readRecords reads the input the way the command line says and sends
// each record until the input ends or send returns false; it returns the
// input's error (nil at its end).
func (p *producePlan) readRecords(in io.Reader, maxLine int, send func(*kgo.Record) bool) error {
	switch {
	case p.valueFiles != nil:
		return readValueFiles(p.valueFiles, p, maxLine, send)
	case p.template != nil:
		return readTemplateRecords(in, p, maxLine, send)
	}
	return readLines(in, p, maxLine, send)
}

// readLines sends a record for each line of in (each run of bytes ended
// by -D's delimiter). Any byte may appear in a record; only its length is
// bounded, by the topic's max.message.bytes.
func readLines(in io.Reader, p *producePlan, maxLine int, send func(*kgo.Record) bool) error {
	delim := p.delimiter
	if delim == nil {
		delim = []byte{'\n'}
	}
	sc := bufio.NewScanner(in)
	// The buffer holds a record and its delimiter; bufio's default would
	// stop at 64 KiB, far below what a topic takes. The scanner's limit is
	// the larger of its argument and the initial buffer's capacity, so the
	// initial buffer must not exceed it either.
	limit := maxLine + len(delim)
	sc.Buffer(make([]byte, 0, min(64<<10, limit)), limit)
	if p.delimiter == nil {
		sc.Split(scanRecordLines)
	} else {
		sc.Split(scanDelimited(delim))
	}
	n := 0
	for sc.Scan() {
		n++
		// Cloned: the scanner reuses its buffer on the next Scan, while the
		// record waits in the client until its batch is sent.
		if !send(p.record(bytes.Clone(sc.Bytes()))) {
			return nil
		}
	}
	err := sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		what := "line"
		if p.delimiter != nil {
			what = "record"
		}
		err = fmt.Errorf("%s %d is longer than the topic's max.message.bytes (%d bytes)", what, n+1, maxLine)
	}
	return err
}

// scanRecordLines splits input into lines, the default records.
var scanRecordLines = scanDelimited([]byte{'\n'})

// scanDelimited is bufio.ScanLines for any delimiter and without its
// dropping of a '\r' before the '\n': the record is the bytes between
// delimiters exactly, as kcat writes them. Input that ends without a
// delimiter is a last record.
func scanDelimited(delim []byte) bufio.SplitFunc {
	return func(data []byte, atEOF bool) (advance int, token []byte, err error) {
		if atEOF && len(data) == 0 {
			return 0, nil, nil
		}
		if i := bytes.Index(data, delim); i >= 0 {
			return i + len(delim), data[:i], nil
		}
		if atEOF {
			return len(data), data, nil
		}
		return 0, nil, nil
	}
}

// record builds the record for one line, or for one value. Only the
// manual partitioner (--partition) reads Partition, so -1, "not given",
// may become 0 there without effect.
func (p *producePlan) record(line []byte) *kgo.Record {
	r := &kgo.Record{
		Topic:     p.topic,
		Value:     line,
		Headers:   p.headers,
		Partition: max(p.partition, 0),
		Timestamp: p.timestamp, // zero: the client stamps it when produced
		// Ctrl-C stops reading but not delivery: records already read are
		// flushed, bounded by --timeout through RecordDeliveryTimeout (or
		// recordContext's deadline).
		Context: context.Background(),
	}
	if p.recordContext != nil {
		r.Context = p.recordContext()
	}
	switch {
	case p.key != nil:
		r.Key = p.key
	// The first delimiter splits, so a value may contain it (JSON after
	// "user-1:"), as with kcat -K.
	case p.keyDelimiter != nil:
		if k, v, ok := bytes.Cut(line, p.keyDelimiter); ok {
			r.Key, r.Value = k, v
		}
	}
	p.nullEmpty(r)
	return r
}

// nullEmpty applies -Z: an empty key or value becomes null, so an empty
// value is a tombstone.
func (p *producePlan) nullEmpty(r *kgo.Record) {
	if !p.nullIfEmpty {
		return
	}
	if len(r.Key) == 0 {
		r.Key = nil
	}
	if len(r.Value) == 0 {
		r.Value = nil
	}
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

// failed reports whether a record has failed; produceLines stops reading
// then, so records are not written past a gap in what was acknowledged.
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
	// Bytes count keys and values only, what the user sent: headers and
	// batch framing vary with the client and would make the figure
	// unreproducible.
	res.records++
	res.bytes += int64(len(r.Key) + len(r.Value))
	pw := res.partitions[r.Partition]
	if pw == nil {
		pw = &partitionWrite{Partition: r.Partition, FirstOffset: r.Offset}
		res.partitions[r.Partition] = pw
	}
	pw.LastOffset = r.Offset
	pw.Records++
	// With acks 0 the client fills in offsets it never got from the
	// broker; printing them would look like facts.
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
	// The first failed record is reported before a read or flush error:
	// it is why reading stopped, and the others follow from it.
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
