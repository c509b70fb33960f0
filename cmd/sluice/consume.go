package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeOptions are consume's own flags. Their letters are kcat's (-o
// offset, -p partition, -e exit at end, -f format) and rpk's (-g group,
// where kcat has -G), so a command line from either needs few changes.
type consumeOptions struct {
	offset     string
	partitions []int32
	group      string
	num        int
	exitAtEnd  bool
	format     string
	binary     string
}

func newConsumeCmd() *cobra.Command {
	var o consumeOptions
	var e *clientEnv
	cmd := &cobra.Command{
		Use:   "consume TOPIC [TOPIC...]",
		Short: "Print records from topics",
		Long: `Print the records of one or more topics, as kcat -C does, and keep following
new records until Ctrl-C, -n records or, with -e, the end of each partition
as it was when consume started.

-o/--offset says where to start in each partition, as kcat's and rpk's -o:
start (the default; also beginning, earliest, oldest), end (also latest,
newest), an offset N, -N (N records before the end), +N (N records after
the start), stored (the group's committed offsets; needs --group), or @TIME
(also kcat's s@TIME): the first record stamped at or after TIME, in
milliseconds since the epoch or RFC 3339. An offset outside the log starts
at its nearer end.

-o used to name the output format; here it is the offset, as in kcat and
rpk, and -o json or -o text fail with exit 2. Write --json or --output json.

With --group the partitions are shared with the group's other members and
the offsets of printed records are committed; -o then applies only
to partitions the group has no committed offset for.

Output is --format, or with --json one JSON object per line: topic,
partition, offset, timestamp (ms), key, value and headers ([{key, value}]).
Keys and values that are valid UTF-8 are JSON strings; other bytes are
base64 with key_encoding or value_encoding "base64" beside them
(--binary base64 encodes them all). A null key or value is null.

` + recordFormatHelp,
		Example: `  # Everything in orders, then exit
  sluice consume orders -e

  # The last 10 records, with keys and offsets (kcat's -o and verbs)
  sluice consume orders -o -10 -e -f '%p/%o %k=%s\n'

  # From the beginning, with the time of each record
  sluice consume orders -o beginning -e -f '%d{2006-01-02T15:04:05Z07:00} %s\n'

  # Follow as part of group "billing", committing what is printed
  sluice consume orders -g billing

  # Records since a time, as JSON lines, from partitions 0 and 2
  sluice consume orders -o @2024-05-01T00:00:00Z --partition 0,2 --json`,
		Args: minOneTopic,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runConsume(cmd, e, &o, args)
		},
	}
	// -o is the offset here, as in kcat and rpk, so --output has no -o.
	e = newClientEnvWithoutO(cmd)
	cmd.ValidArgsFunction = completeTopics(e)
	fs := cmd.Flags()
	fs.StringVarP(&o.offset, "offset", "o", "start", "where to start: start, end, N, -N, +N, stored, @TIMESTAMP_MS or @RFC3339")
	fs.Int32SliceVarP(&o.partitions, "partition", "p", nil, "consume only partition N (repeatable, or a comma list)")
	fs.StringVarP(&o.group, "group", "g", "", "consume as a member of consumer group NAME, committing offsets")
	fs.IntVarP(&o.num, "num", "n", 0, "exit after N records (0: no limit)")
	fs.BoolVarP(&o.exitAtEnd, "exit-at-end", "e", false, "exit once every partition reaches the end it had when consume started")
	fs.StringVarP(&o.format, "format", "f", defaultRecordFormat, "output template (see above)")
	fs.StringVar(&o.binary, "binary", binaryAuto, "with --json, how keys and values are written: auto or base64")
	return cmd
}

// minOneTopic is the Args validator of consume.
func minOneTopic(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return usageErrorf("%s needs at least one TOPIC argument", cmd.CommandPath())
	}
	for _, a := range args {
		if a == "" {
			return usageErrorf("%s: empty TOPIC argument", cmd.CommandPath())
		}
	}
	return nil
}

// Kinds of --offset.
const (
	offsetStart     = iota // the log start offset
	offsetEnd              // the high watermark
	offsetExact            // offset n
	offsetFromEnd          // n before the high watermark
	offsetTime             // the first record stamped at or after n ms
	offsetFromStart        // n after the log start offset
	offsetStored           // the group's committed offset, else the log start
)

// offsetSpec is a parsed --offset.
type offsetSpec struct {
	kind int
	n    int64
}

// parseOffsetSpec parses -o/--offset, taking kcat's and rpk's spellings;
// errors are usage errors.
func parseOffsetSpec(s string) (offsetSpec, error) {
	bad := usageErrorf("-o/--offset %q: want start, end, N, -N, +N, stored, @TIMESTAMP_MS or @RFC3339", s)
	// Every spelling of the two ends that kcat, rpk and Kafka's own
	// auto.offset.reset use is accepted, so muscle memory from any of them
	// works.
	switch s {
	case "start", "beginning", "earliest", "oldest":
		return offsetSpec{kind: offsetStart}, nil
	case "end", "latest", "newest":
		return offsetSpec{kind: offsetEnd}, nil
	case "stored":
		return offsetSpec{kind: offsetStored}, nil
	case "json":
		// -o was the output format before it became kcat's and rpk's
		// offset; say so rather than "want start, end, ...".
		return offsetSpec{}, usageErrorf("-o %q: -o is the start offset now (as in kcat and rpk); for JSON output use --json or --output json", s)
	case "text":
		return offsetSpec{}, usageErrorf("-o %q: -o is the start offset now (as in kcat and rpk); text output is the default (--output text)", s)
	}
	if ts, ok := strings.CutPrefix(s, "@"); ok {
		return parseOffsetTime(ts, bad)
	}
	// kcat writes a timestamp start as s@MS; accepting it lets a kcat
	// command line be pasted.
	if ts, ok := strings.CutPrefix(s, "s@"); ok {
		return parseOffsetTime(ts, bad)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err != nil:
		return offsetSpec{}, bad
	// The sign matters even when ParseInt ignores it: "-10" is ten before
	// the end (kcat's -o -10) and "+10" ten after the start, while "10"
	// is offset 10 itself. "-0" is the end.
	case strings.HasPrefix(s, "-"):
		if n == 0 {
			return offsetSpec{kind: offsetEnd}, nil
		}
		return offsetSpec{kind: offsetFromEnd, n: -n}, nil
	case strings.HasPrefix(s, "+"):
		return offsetSpec{kind: offsetFromStart, n: n}, nil
	}
	return offsetSpec{kind: offsetExact, n: n}, nil
}

// parseOffsetTime parses the TIME of @TIME: milliseconds or RFC 3339.
func parseOffsetTime(ts string, bad error) (offsetSpec, error) {
	if ms, err := strconv.ParseInt(ts, 10, 64); err == nil && ms >= 0 {
		return offsetSpec{kind: offsetTime, n: ms}, nil
	}
	// A time before 1970 is clamped to 0: ListOffsets reserves negative
	// timestamps for its special queries (-1 latest, -2 earliest), so
	// passing one through would silently mean something else.
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		return offsetSpec{kind: offsetTime, n: max(t.UnixMilli(), 0)}, nil
	}
	return offsetSpec{}, bad
}

// kgoOffset is the spec as the client's reset offset: where a group member
// starts a partition without a committed offset, and where any partition
// resumes if its position falls out of the log.
//
// offsetStored has no client equivalent: with a group, a partition that
// has a commit never consults the reset offset, and one without starts at
// the log start, as stored's help promises.
func (s offsetSpec) kgoOffset() kgo.Offset {
	switch s.kind {
	case offsetEnd:
		return kgo.NewOffset().AtEnd()
	case offsetExact:
		return kgo.NewOffset().At(s.n)
	case offsetFromEnd:
		return kgo.NewOffset().AtEnd().Relative(-s.n)
	case offsetTime:
		return kgo.NewOffset().AfterMilli(s.n)
	case offsetFromStart:
		return kgo.NewOffset().AtStart().Relative(s.n)
	}
	return kgo.NewOffset().AtStart()
}

// partitionBounds is one partition's log start and high watermark, and
// for a by-time --offset the first offset at or after that time.
type partitionBounds struct {
	logStart, highWatermark, atTime int64
}

// resolve is the offset the spec starts at in a partition. It is bounded
// within the log, as the client bounds an offset it is given.
func (s offsetSpec) resolve(b partitionBounds) int64 {
	var at int64
	switch s.kind {
	case offsetStart, offsetStored:
		at = b.logStart
	case offsetFromStart:
		at = b.logStart + s.n
	case offsetEnd:
		at = b.highWatermark
	case offsetExact:
		at = s.n
	case offsetFromEnd:
		at = b.highWatermark - s.n
	case offsetTime:
		at = b.atTime
	}
	// Clamping here, rather than leaving it to the client's reset, keeps
	// the start offset printed and used by -e the one actually read: an
	// -o -100 on a 10-record partition starts at its log start.
	return min(max(at, b.logStart), b.highWatermark)
}

// topicPartition names one partition.
type topicPartition struct {
	topic     string
	partition int32
}

func (tp topicPartition) String() string {
	return fmt.Sprintf("topic %q partition %d", tp.topic, tp.partition)
}

// consumePlan is a consume command line checked against the cluster.
type consumePlan struct {
	topics    []string
	spec      offsetSpec
	group     string
	num       int
	exitAtEnd bool
	asJSON    bool
	format    recordFormat
	binary    string
	// partitions are the partitions to read (all of each topic's unless
	// --partition); with a group, the group assigns from these.
	partitions []topicPartition
	// start and end are, where known, where each partition starts and the
	// high watermark it had when consume started (for -e).
	start, end map[topicPartition]int64
}

// planConsume validates the flags; every error is a usage error (exit 2).
func planConsume(cmd *cobra.Command, e *clientEnv, o *consumeOptions, topics []string) (*consumePlan, error) {
	p := &consumePlan{group: o.group, num: o.num, exitAtEnd: o.exitAtEnd, binary: o.binary}
	// A topic named twice is read once; reading it twice would print
	// every record twice and, in a group, subscribe to it once anyway.
	for _, t := range topics {
		if !slices.Contains(p.topics, t) {
			p.topics = append(p.topics, t)
		}
	}
	var err error
	if p.spec, err = parseOffsetSpec(o.offset); err != nil {
		return nil, err
	}
	if p.asJSON, err = e.jsonOutput(); err != nil {
		return nil, err
	}
	if p.spec.kind == offsetStored && o.group == "" {
		return nil, usageErrorf("-o stored starts at the group's committed offsets: give --group GROUP")
	}
	if p.asJSON && cmd.Flags().Changed("format") {
		return nil, usageErrorf("--format and --json conflict: choose one output")
	}
	if p.format, err = parseRecordFormat(o.format); err != nil {
		return nil, usageErrorf("--format: %v", err)
	}
	if o.binary != binaryAuto && o.binary != binaryBase64 {
		return nil, usageErrorf("--binary %q: want auto or base64", o.binary)
	}
	if o.num < 0 {
		return nil, usageErrorf("--num %d: want a count of records (0: no limit)", o.num)
	}
	// A group member cannot choose partitions: the group's assignor does.
	// Kafka's consumer refuses mixing subscribe and assign the same way.
	if o.group != "" && len(o.partitions) > 0 {
		return nil, usageErrorf("--group and --partition conflict: a group assigns partitions to its members")
	}
	for _, part := range o.partitions {
		if part < 0 {
			return nil, usageErrorf("--partition %d: want a partition number (0 or more)", part)
		}
	}
	return p, nil
}

// checkConsumeTopics fills p.partitions from the cluster's metadata. A
// missing topic is an error, not created: the metadata request does not
// ask for creation, whatever auto.create.topics.enable says.
func checkConsumeTopics(ctx context.Context, adm *kadm.Client, p *consumePlan, only []int32) error {
	topics, err := adm.ListTopics(ctx, p.topics...)
	if err != nil {
		return fmt.Errorf("listing topics %q: %w", p.topics, err)
	}
	for _, t := range p.topics {
		td, ok := topics[t]
		switch {
		case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("topic %q does not exist", t)
		case td.Err != nil:
			return fmt.Errorf("topic %q: %w", t, td.Err)
		}
		n := int32(len(td.Partitions))
		for _, part := range only {
			if part >= n {
				return fmt.Errorf("topic %q has %d partition(s): partition %d does not exist", t, n, part)
			}
		}
		for part := range n {
			if len(only) == 0 || slices.Contains(only, part) {
				p.partitions = append(p.partitions, topicPartition{t, part})
			}
		}
	}
	return nil
}

// resolveOffsets fills p.start and p.end: where each partition starts
// (its committed offset in a group, else --offset) and its high watermark
// now. Without a group consume then starts exactly there; with -e it reads
// each partition up to that high watermark.
func resolveOffsets(ctx context.Context, adm *kadm.Client, p *consumePlan) error {
	bounds, err := listBounds(ctx, adm, p)
	if err != nil {
		return err
	}
	var committed kadm.OffsetResponses
	if p.group != "" {
		if committed, err = fetchCommitted(ctx, adm, p.group); err != nil {
			return fmt.Errorf("group %q: fetching committed offsets: %w", p.group, err)
		}
	}
	p.start = make(map[topicPartition]int64, len(p.partitions))
	p.end = make(map[topicPartition]int64, len(p.partitions))
	for _, tp := range p.partitions {
		b := bounds[tp]
		p.end[tp] = b.highWatermark
		p.start[tp] = p.spec.resolve(b)
		// A committed offset wins over -o, as in any Kafka consumer: -o
		// is auto.offset.reset for partitions the group never committed.
		// It is clamped too, since retention may have deleted past it.
		if c, ok := committed.Lookup(tp.topic, tp.partition); ok && c.Err == nil && c.At >= 0 {
			p.start[tp] = min(max(c.At, b.logStart), b.highWatermark)
		}
	}
	return nil
}

// listBounds lists each partition's log start, high watermark and, for a
// by-time --offset, the offset at that time.
func listBounds(ctx context.Context, adm *kadm.Client, p *consumePlan) (map[topicPartition]partitionBounds, error) {
	starts, err := adm.ListStartOffsets(ctx, p.topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing start offsets of %q: %w", p.topics, err)
	}
	ends, err := adm.ListEndOffsets(ctx, p.topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %q: %w", p.topics, err)
	}
	var atTime kadm.ListedOffsets
	if p.spec.kind == offsetTime {
		atTime, err = adm.ListOffsetsAfterMilli(ctx, p.spec.n, p.topics...)
		if err == nil {
			err = atTime.Error()
		}
		if err != nil {
			return nil, fmt.Errorf("listing offsets of %q at %d ms: %w", p.topics, p.spec.n, err)
		}
	}
	out := make(map[topicPartition]partitionBounds, len(p.partitions))
	for _, tp := range p.partitions {
		s, ok1 := starts.Lookup(tp.topic, tp.partition)
		e, ok2 := ends.Lookup(tp.topic, tp.partition)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s: the broker did not list its offsets", tp)
		}
		// A time past every record (the broker answers -1, which kadm
		// turns into the high watermark) starts at the end, where the
		// first such record will arrive, as kcat does.
		b := partitionBounds{logStart: s.Offset, highWatermark: e.Offset, atTime: e.Offset}
		if t, ok := atTime.Lookup(tp.topic, tp.partition); ok && t.Offset >= 0 {
			b.atTime = t.Offset
		}
		out[tp] = b
	}
	return out, nil
}

// fetchCommitted fetches the group's committed offsets, retrying the
// errors a coordinator gives while it starts: the first use of groups
// creates __consumer_offsets, and until its partitions load the broker
// answers COORDINATOR_NOT_AVAILABLE, as Kafka does.
func fetchCommitted(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	for {
		committed, err := adm.FetchOffsets(ctx, group)
		if err == nil || !kerr.IsRetriable(err) {
			return committed, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
