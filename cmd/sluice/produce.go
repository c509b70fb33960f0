package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/vfs"
)

// defaultMaxMessageBytes is Kafka's message.max.bytes default, used as the
// longest line we accept until the topic's own max.message.bytes is known.
// It is 1 MiB plus 12 bytes, the batch's offset and length prefix, which
// Kafka counts in the limit.
const defaultMaxMessageBytes = 1048588

// produceBufferedBytes bounds the records read ahead of the broker's
// acknowledgements, so piping a large file in does not hold it all in memory:
// reading stalls until the broker catches up. 64 MiB keeps dozens of
// full-size batches in flight, enough to keep a broker busy, and is small
// next to the files people pipe in.
const produceBufferedBytes = 64 << 20

// unknownTopicRetries is how many metadata refreshes a record may wait for
// its topic to appear before it fails. The up-front check in
// checkProduceTopic catches a missing topic at once; this bounds the race
// where the topic is deleted after it.
const unknownTopicRetries = 2

// produceOptions are produce's own flags. Short letters follow kcat and
// rpk where they agree (-k key, -K key delimiter, -H header, -p partition,
// -z compression, -Z null, -D delimiter), since those are what users type
// from memory; a letter whose meaning changed fails loudly (see planKeys).
type produceOptions struct {
	file         string
	keyDelimiter string
	key          string
	keyLiteral   bool
	headers      []string
	partition    int32
	compression  string
	acks         string
	nullEmpty    bool
	delimiter    string
	format       string
	timestamp    string
	valueFiles   []string
}

// produceLong is produce --help's description.
const produceLong = `Read lines from standard input (or --file) and write each as one record to
TOPIC. The trailing newline is not part of the record; a last line without
one still counts. A line may be as long as the topic's max.message.bytes.

-k/--key KEY gives every record the key KEY, as -k does in kcat and rpk.
With -K/--key-delimiter SEP each line is split at the first SEP into key
and value instead; a line without SEP is written with a null key and the
whole line as value, as kcat -K does (SEP '\t' is a tab, as in kcat).

-k used to be the key delimiter. So that an old command line cannot
silently write every record under the key ":", -k refuses a value that
looks like a delimiter (one punctuation or space character, or '\t') and
exits 2 pointing at -K. To really use such a key, add --key-literal.

-Z/--null-empty sends an empty key or value as null, as kcat -Z does: a
null value is a tombstone, which a compacted topic reads as "delete this
key", so with -K : the line "user-1:" deletes user-1. Without -Z an empty
line is an empty (not null) value.

-D/--delimiter SEP ends each record at SEP instead of a newline (escapes
\n \t \r \\ \0 \xHH, as kcat -D); records may hold any bytes, newlines
included, up to max.message.bytes. -K still splits each record.

--format TEMPLATE reads each record by a template, as rpk produce -f does:
%k the key, %v the value, %H one header NAME=VALUE (repeatable), %T the
timestamp (ms or RFC 3339), %% a percent sign, and literal text with -D's
escapes. Each verb ends at the literal after it, and the template ends with
the record's separator, e.g. '%k %v\n' or '%T,%H,%k,%v\n'. It replaces
-K and -D. --timestamp MS|RFC3339 stamps every record (default: when
produced); -H headers come before %H ones.

--value-file PATH writes one record whose value is the file's bytes
exactly (repeat it for more records, each keyed by -k if given);
standard input is not read.

Records with a key go to the partition its hash picks (murmur2, as the Java
client does), so one key always lands on one partition; records without
one are spread in batches. --partition writes every record to one partition.

A topic that does not exist is created on first use when the broker allows
it (auto.create.topics.enable, on by default); otherwise produce fails at
once with UNKNOWN_TOPIC_OR_PARTITION.

When the input ends (or on Ctrl-C) produce waits for the broker to
acknowledge every record, then reports what was written on stderr, or as a
JSON summary on stdout with --json. If a record fails, produce stops
reading, reports how many records the broker acknowledged, and exits 1
naming the partition and the Kafka error. (Lines already handed to the
client when the failure comes back may still be written; the count
includes them.) With --acks 0 the broker does not answer: offsets are
unknown, reported as -1, and produce may exit before the broker has
appended the last records.`

// produceExamples are produce --help's examples; a test runs each.
const produceExamples = `  # Three records, one per line
  printf 'a\nb\nc\n' | sluice produce orders

  # Keyed records: "user-1" is the key, the rest of the line the value
  printf 'user-1:{"total":3}\n' | sluice produce orders -K :

  # Every record with the key "user-1", as kcat -k and rpk -k do
  echo '{"total":3}' | sluice produce orders -k user-1

  # A file, gzip-compressed, with a header on every record, summary as JSON
  sluice produce orders -f events.txt -z gzip -H source=import --json

  # A tombstone: delete key user-1 in a compacted topic (kcat -Z)
  echo 'user-1:' | sluice produce orders -K : -Z

  # NUL-separated records that may hold newlines (kcat -D)
  printf 'line 1\nline 2\0next\0' | sluice produce orders -D '\0'

  # Key, a header and a timestamp per record (rpk produce -f)
  echo '1714564800000 user-1 src=web {"total":3}' | sluice produce orders --format '%T %k %H %v\n'

  # Binary values, one record per file, all with one key and timestamp
  sluice produce images --value-file a.png --value-file b.png -k batch-7 --timestamp 2024-05-01T12:00:00Z`

func newProduceCmd() *cobra.Command {
	var o produceOptions
	var e *clientEnv
	cmd := &cobra.Command{
		Use:     "produce TOPIC",
		Short:   "Write records to a topic, one per line of input",
		Long:    produceLong,
		Example: produceExamples,
		Args:    exactlyOneTopic,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProduce(cmd, e, &o, args[0])
		},
	}
	e = newClientEnv(cmd)
	cmd.ValidArgsFunction = completeTopics(e)
	fs := cmd.Flags()
	fs.StringVarP(&o.file, "file", "f", "", "read lines from FILE instead of standard input")
	fs.StringVarP(&o.key, "key", "k", "", "use KEY as the key of every record (as kcat -k and rpk -k)")
	fs.StringVarP(&o.keyDelimiter, "key-delimiter", "K", "", "split each line at the first SEP into key and value (as kcat -K)")
	fs.BoolVar(&o.keyLiteral, "key-literal", false, "take -k's value as the key even when it looks like a delimiter")
	fs.StringArrayVarP(&o.headers, "header", "H", nil, "add header KEY=VALUE to every record (repeatable)")
	fs.Int32VarP(&o.partition, "partition", "p", -1, "write every record to partition N (default: by key hash)")
	fs.StringVarP(&o.compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	fs.StringVar(&o.acks, "acks", "all", "acknowledgement to wait for: all (every in-sync replica), 1 (the leader) or 0 (none)")
	fs.BoolVarP(&o.nullEmpty, "null-empty", "Z", false, "send an empty key or value as null; an empty value is a tombstone (as kcat -Z)")
	fs.StringVarP(&o.delimiter, "delimiter", "D", "", `end each record at SEP instead of a newline; escapes \n \t \r \\ \0 \xHH (as kcat -D)`)
	fs.StringVar(&o.format, "format", "", `read each record by TEMPLATE, e.g. '%k %v\n': %k key, %v value, %H header NAME=VALUE, %T timestamp (as rpk -f)`)
	fs.StringVar(&o.timestamp, "timestamp", "", "give every record the timestamp MS (ms since the epoch) or RFC 3339 time")
	fs.StringArrayVar(&o.valueFiles, "value-file", nil, "write one record whose value is PATH's bytes (repeatable; standard input is not read)")
	return cmd
}

// exactlyOneTopic is the Args validator of commands that take one TOPIC.
func exactlyOneTopic(cmd *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return usageErrorf("%s takes one TOPIC argument, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// producePlan is a produce command line checked and turned into client
// options and the per-record fields every line shares.
type producePlan struct {
	topic        string
	keyDelimiter []byte
	key          []byte // nil: no fixed key
	headers      []kgo.RecordHeader
	partition    int32
	delimiter    []byte         // -D; nil: a newline
	template     *inputTemplate // --format; nil: by lines
	timestamp    time.Time      // --timestamp; zero: when produced
	valueFiles   []string       // --value-file; nil: read the input
	nullIfEmpty  bool
	// recordContext is each record's Context; nil: context.Background().
	recordContext func() context.Context
	acksNone      bool
	asJSON        bool
	opts          []kgo.Opt
}

// planProduce validates the flags; every error is a usage error (exit 2).
func planProduce(cmd *cobra.Command, e *clientEnv, o *produceOptions, topic string) (*producePlan, error) {
	p := &producePlan{topic: topic, partition: o.partition}
	var err error
	if p.asJSON, err = e.jsonOutput(); err != nil {
		return nil, err
	}
	if p.key, p.keyDelimiter, err = planKeys(cmd, o); err != nil {
		return nil, err
	}
	if p.headers, err = parseHeaders(o.headers); err != nil {
		return nil, err
	}
	if err = planInput(cmd, o, p); err != nil {
		return nil, err
	}
	if o.partition < -1 {
		return nil, usageErrorf("--partition %d: want a partition number (0 or more)", o.partition)
	}
	// A nil hasher is murmur2, the Java client's, so a key lands on the
	// partition Java and librdkafka's murmur2 partitioners pick; records
	// without a key stick to one partition per batch (KIP-480).
	p.opts = []kgo.Opt{kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil))}
	if o.partition >= 0 {
		p.opts = []kgo.Opt{kgo.RecordPartitioner(kgo.ManualPartitioner())}
	}
	codec, err := compressionCodec(o.compression)
	if err != nil {
		return nil, err
	}
	p.opts = append(p.opts, kgo.ProducerBatchCompression(codec))
	acksOpts, err := acksOptions(o.acks)
	if err != nil {
		return nil, err
	}
	p.acksNone = o.acks == "0"
	p.opts = append(p.opts, acksOpts...)
	return p, nil
}

// planKeys checks -k, -K and --key-literal and returns the fixed key or the
// delimiter (nil when not set).
func planKeys(cmd *cobra.Command, o *produceOptions) (key, delimiter []byte, err error) {
	fs := cmd.Flags()
	keySet, delimiterSet := fs.Changed("key"), fs.Changed("key-delimiter")
	switch {
	case keySet && delimiterSet:
		return nil, nil, usageErrorf("-k/--key and -K/--key-delimiter conflict: use one way to set keys")
	case o.keyLiteral && !keySet:
		return nil, nil, usageErrorf("--key-literal applies to -k/--key, which is not given")
	case delimiterSet:
		if o.keyDelimiter == "" {
			return nil, nil, usageErrorf("-K/--key-delimiter is empty")
		}
		return nil, []byte(unescapeDelimiter(o.keyDelimiter)), nil
	case keySet && looksLikeDelimiter(o.key) && !o.keyLiteral:
		// -k was the key delimiter before it became kcat's and rpk's key;
		// an old command line must fail, not key every record ":".
		return nil, nil, usageErrorf("-k sets the key now (as in kcat and rpk); for a key delimiter use -K '%s' "+
			"(or add --key-literal to give every record the key %q)", shellDelimiter(o.key), o.key)
	case keySet:
		return []byte(o.key), nil, nil
	}
	return nil, nil, nil
}

// planInput checks how records are read (-D, --format, --value-file) and
// what they carry (-Z, --timestamp); the three ways of reading exclude each
// other and -K, which they would contradict.
func planInput(cmd *cobra.Command, o *produceOptions, p *producePlan) error {
	fs := cmd.Flags()
	p.nullIfEmpty = o.nullEmpty
	if fs.Changed("timestamp") {
		ts, err := parseRecordTimestamp(o.timestamp)
		if err != nil {
			return usageErrorf("--timestamp: %v", err)
		}
		p.timestamp = ts
	}
	if err := checkInputConflicts(fs.Changed); err != nil {
		return err
	}
	var err error
	switch {
	case fs.Changed("delimiter"):
		p.delimiter, err = parseDelimiter("-D/--delimiter", o.delimiter)
	case fs.Changed("format"):
		if p.template, err = parseInputTemplate(o.format); err != nil {
			return err
		}
		switch {
		case p.template.hasKey && fs.Changed("key"):
			return usageErrorf("--format has %%k and -k/--key gives a fixed key: use one")
		case p.template.hasTS && fs.Changed("timestamp"):
			return usageErrorf("--format has %%T and --timestamp gives a fixed timestamp: use one")
		}
	case fs.Changed("value-file"):
		for _, path := range o.valueFiles {
			if path == "" {
				return usageErrorf("--value-file is empty")
			}
		}
		p.valueFiles = o.valueFiles
	}
	return err
}

// inputConflicts are the pairs of flags that contradict each other, with
// why. -D and -K go together (split each record at -K), as do --file and
// --format or -D, which only say where the input comes from.
var inputConflicts = []struct{ a, b, why string }{
	{"format", "key-delimiter", "--format splits each record itself (use %k and %v)"},
	{"format", "delimiter", `--format's last separator ends each record (e.g. '%v\0')`},
	{"value-file", "file", "--value-file reads its files, not other input"},
	{"value-file", "format", "--value-file reads its files, not other input"},
	{"value-file", "delimiter", "--value-file reads its files, not other input"},
	{"value-file", "key-delimiter", "each --value-file is a whole value; key it with -k"},
}

// flagNames are the spellings used in errors.
var flagNames = map[string]string{"value-file": "--value-file", "format": "--format", "delimiter": "-D/--delimiter",
	"key-delimiter": "-K/--key-delimiter", "file": "-f/--file"}

// checkInputConflicts fails (exit 2) on the first pair of given flags
// that contradict each other.
func checkInputConflicts(changed func(string) bool) error {
	for _, c := range inputConflicts {
		if changed(c.a) && changed(c.b) {
			return usageErrorf("%s and %s conflict: %s", flagNames[c.a], flagNames[c.b], c.why)
		}
	}
	return nil
}

// looksLikeDelimiter reports whether a -k value is more likely an old key
// delimiter than a key: one ASCII punctuation or space character (":",
// ",", "|", "=", a tab), or kcat's written-out tab "\t". Real keys are ids
// and names; a lone ':' is not one.
func looksLikeDelimiter(s string) bool {
	if s == `\t` {
		return true
	}
	if len(s) != 1 {
		return false
	}
	c := s[0]
	return c < 0x80 && (unicode.IsPunct(rune(c)) || unicode.IsSymbol(rune(c)) || unicode.IsSpace(rune(c)))
}

// unescapeDelimiter turns kcat's written-out "\t" into a tab, so -K '\t'
// works as it does with kcat.
func unescapeDelimiter(s string) string {
	return strings.ReplaceAll(s, `\t`, "\t")
}

// shellDelimiter writes a delimiter so it can be pasted inside single
// quotes: a tab as kcat's "\t".
func shellDelimiter(s string) string {
	return strings.ReplaceAll(s, "\t", `\t`)
}

// parseHeaders parses repeated -H KEY=VALUE flags, splitting at the first
// '=' so a value may contain '='.
func parseHeaders(flags []string) ([]kgo.RecordHeader, error) {
	var out []kgo.RecordHeader
	for _, h := range flags {
		k, v, ok := strings.Cut(h, "=")
		if !ok || k == "" {
			return nil, usageErrorf("--header %q: want KEY=VALUE", h)
		}
		out = append(out, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	return out, nil
}

// compressionCodec maps -z to a codec. The names are Kafka's
// compression.type values (and kcat's -z), so they can be copied from a
// topic's config.
func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usageErrorf("--compression %q: want none, gzip, snappy, lz4 or zstd", name)
}

// acksOptions maps --acks to client options. Idempotent writes need acks
// from every in-sync replica, so acks 1 and 0 turn them off.
func acksOptions(acks string) ([]kgo.Opt, error) {
	// -1 is how Kafka's own tools and librdkafka spell all.
	switch acks {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, usageErrorf("--acks %q: want all, 1 or 0", acks)
}

// openProduceInput returns standard input, or --file opened through vfs.
func openProduceInput(cmd *cobra.Command, path string) (io.Reader, func(), error) {
	if path == "" {
		return cmd.InOrStdin(), func() {}, nil
	}
	// Through vfs, the one door to files (the lint test enforces it).
	f, err := vfs.OS().Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--file: %w", err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("--file %s: %w", path, err)
	}
	return io.NewSectionReader(f, 0, size), func() { f.Close() }, nil
}

// runProduce checks the command line, connects, checks the topic, then
// writes each input line as a record and reports the outcome.
func runProduce(cmd *cobra.Command, e *clientEnv, o *produceOptions, topic string) error {
	p, err := planProduce(cmd, e, o, topic)
	if err != nil {
		return err
	}
	if err := checkValueFiles(p.valueFiles); err != nil {
		return err
	}
	in, closeInput, err := openProduceInput(cmd, o.file)
	if err != nil {
		return err
	}
	defer closeInput()

	// The longest record the topic takes is only known once connected, but
	// the client's batch limit is fixed when it is built; the client reads
	// it through this function when it first meets the topic's partitions,
	// which is after checkProduceTopic has set it.
	var maxMessageBytes atomic.Int32
	maxMessageBytes.Store(defaultMaxMessageBytes)
	opts := append(p.opts,
		kgo.AllowAutoTopicCreation(),
		kgo.ProducerBatchMaxBytesFn(func(string) int32 { return maxMessageBytes.Load() }),
		kgo.MaxBufferedBytes(produceBufferedBytes),
		kgo.UnknownTopicRetries(unknownTopicRetries),
	)
	if p.timestamp.IsZero() && (p.template == nil || !p.template.hasTS) {
		opts = append(opts, kgo.RecordDeliveryTimeout(e.timeout))
	} else {
		// The client times a record out by its Timestamp, so a record
		// stamped in the past would fail at once: bound delivery by
		// the record's Context instead.
		deadlines := newDeliveryDeadlines(e.timeout)
		defer deadlines.stop()
		p.recordContext = deadlines.get
	}
	ctx := cmd.Context()
	cl, err := e.client(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	limit, err := checkProduceTopic(ctx, e, kadm.NewClient(cl), p)
	if err != nil {
		return err
	}
	maxMessageBytes.Store(limit)

	res := newProduceResults(topic, p.acksNone)
	readErr := produceLines(ctx, cl, p, in, int(limit), res)
	// Ctrl-C cancels ctx, but the flush still waits (up to --timeout)
	// for the records already handed over, so the report counts what the
	// broker acknowledged rather than guessing.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.timeout)
	defer cancel()
	flushErr := cl.Flush(flushCtx)
	return reportProduce(cmd, p, res, readErr, flushErr)
}

// checkProduceTopic makes sure the topic exists (asking for it creates it
// where the broker allows) and returns the longest record it takes. A
// missing topic fails here, at once, rather than after the client's
// metadata retries.
func checkProduceTopic(ctx context.Context, e *clientEnv, adm *kadm.Client, p *producePlan) (int32, error) {
	rctx, cancel := e.requestContext(ctx)
	defer cancel()
	topics, err := adm.ListTopics(rctx, p.topic)
	if err != nil {
		return 0, fmt.Errorf("topic %q: %w", p.topic, err)
	}
	td, ok := topics[p.topic]
	switch {
	case !ok || errors.Is(td.Err, kerr.UnknownTopicOrPartition):
		return 0, fmt.Errorf("topic %q: %v (it does not exist and the broker did not create it: is auto.create.topics.enable false? Create it with `sluice topic create %s`)",
			p.topic, kerr.UnknownTopicOrPartition, p.topic)
	// A retriable error (LEADER_NOT_AVAILABLE just after auto-creation)
	// is left to the client, which retries it; only a final one fails.
	case td.Err != nil && !kerr.IsRetriable(td.Err):
		return 0, fmt.Errorf("topic %q: %w", p.topic, td.Err)
	case td.Err == nil && p.partition >= int32(len(td.Partitions)):
		return 0, fmt.Errorf("topic %q has %d partition(s): partition %d does not exist", p.topic, len(td.Partitions), p.partition)
	}
	return topicMaxMessageBytes(rctx, adm, p.topic), nil
}

// topicMaxMessageBytes reads the topic's max.message.bytes, falling back to
// Kafka's default if the broker will not say: the broker still enforces
// the real limit and names it in the error.
func topicMaxMessageBytes(ctx context.Context, adm *kadm.Client, topic string) int32 {
	configs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return defaultMaxMessageBytes
	}
	rc, err := configs.On(topic, nil)
	if err != nil || rc.Err != nil {
		return defaultMaxMessageBytes
	}
	for _, c := range rc.Configs {
		if c.Key != "max.message.bytes" || c.Value == nil {
			continue
		}
		n, err := strconv.ParseInt(*c.Value, 10, 64)
		if err != nil {
			return defaultMaxMessageBytes
		}
		// The client refuses batch limits outside [512, 1 GiB].
		return int32(min(max(n, 512), 1<<30))
	}
	return defaultMaxMessageBytes
}
