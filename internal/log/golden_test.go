package log

import (
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/golden"
	"github.com/sluicelog/sluice/internal/record"
	"github.com/sluicelog/sluice/internal/vfs"
)

// Golden-file tests: each testdata/*.txt file is a story told to one log in
// a tiny command language, each command followed by the state it must
// produce. Regenerate the expected output after an intended change with
//
//	go test -run TestLogGolden ./internal/log/ -rewrite
//
// and review the diff: it is the behaviour change.
//
// File format: blocks separated by blank lines; a block is optional '#'
// comment lines, one command, a "----" line and the expected output.
//
// Commands (times are milliseconds on a manual clock starting at 0):
//
//	open [segment.bytes=N] [segment.ms=N] [index.interval.bytes=N]
//	     [segment.index.bytes=N] [retention.ms=N] [retention.bytes=N]
//	     [flush=always|interval|never] [files=N]    a new log (default: Kafka's defaults, but
//	                                               retention off and 64 KiB indexes)
//	config key=value...                            change the open log's config
//	append [n=1] [size=100] [ts=0] [batches=1] [ts-step=0] [log-append-time]
//	                                               append batches one Append each; batch i starts at ts+i*ts-step,
//	                                               its records at +0, +1, ...
//	advance MS                                     move the clock
//	truncate OFFSET
//	delete-records OFFSET
//	retention [now=MS]                             DeleteExpiredSegments at now (default: the clock)
//	reopen [clean|recover|recovery-point=N]        Close, then Open as after a clean shutdown,
//	                                               a crash (validate everything) or with a checkpoint
//	read OFFSET [max=N] [hw=N] [min-one]
//	offset-for-time TS
//	max-timestamp
//	segments                                       per segment: base, size, next offset, state, index entries
//	ls                                             the log directory's files and sizes

var goldenRewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/ with the current output")

func TestLogGolden(t *testing.T) {
	golden.RunDir(t, "testdata", *goldenRewrite, func(t *testing.T) func(string) string {
		g := &goldenLog{t: t, clock: clock.NewManual(time.UnixMilli(0))}
		t.Cleanup(g.close)
		return g.run
	})
}

// goldenLog is the log a golden file drives.
type goldenLog struct {
	t     *testing.T
	clock *clock.Manual
	fs    *vfs.MemFS
	files *FileCache
	cfg   Config
	log   *Log
}

const goldenDir = "/data/topic-0"

func (g *goldenLog) close() {
	if g.log != nil {
		g.log.Close()
	}
}

// run executes one command and returns its output (never empty, never with
// a blank line, so the file format stays unambiguous).
func (g *goldenLog) run(command string) string {
	fields := strings.Fields(command)
	name, args := fields[0], goldenArgs{t: g.t, command: command, kv: map[string]string{}}
	for _, f := range fields[1:] {
		if k, v, ok := strings.Cut(f, "="); ok {
			args.kv[k] = v
		} else {
			args.words = append(args.words, f)
		}
	}
	if name != "open" && g.log == nil {
		g.t.Fatalf("%q before open", command)
	}
	switch name {
	case "open":
		return g.open(&args)
	case "config":
		noErr(g.t, g.log.SetConfig(args.config(g.log.Config())))
		return "ok"
	case "append":
		return g.append(&args)
	case "advance":
		g.clock.Advance(time.Duration(args.word(0)) * time.Millisecond)
		return fmt.Sprintf("now %d", g.clock.Now().UnixMilli())
	case "truncate":
		if err := g.log.Truncate(args.word(0)); err != nil {
			return "error: " + goldenError(err)
		}
		return g.offsets()
	case "delete-records":
		if _, err := g.log.DeleteRecordsBefore(args.word(0)); err != nil {
			return "error: " + goldenError(err)
		}
		return g.offsets()
	case "retention":
		n, err := g.log.DeleteExpiredSegments(args.int("now", g.clock.Now().UnixMilli()))
		noErr(g.t, err)
		return fmt.Sprintf("deleted %d segments; %s", n, g.offsets())
	case "reopen":
		return g.reopen(&args)
	case "read":
		return g.read(&args)
	case "offset-for-time":
		r, ok, err := g.log.OffsetForTimestamp(args.word(0))
		return goldenTimestamp(r, ok, err)
	case "max-timestamp":
		r, ok, err := g.log.MaxTimestamp()
		return goldenTimestamp(r, ok, err)
	case "segments":
		return g.segments()
	case "ls":
		return g.ls()
	}
	g.t.Fatalf("unknown command %q", command)
	return ""
}

type goldenArgs struct {
	t       *testing.T
	command string
	kv      map[string]string
	words   []string
}

func (a *goldenArgs) int(key string, def int64) int64 {
	v, ok := a.kv[key]
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		a.t.Fatalf("%q: %s=%q is not a number", a.command, key, v)
	}
	return n
}

func (a *goldenArgs) word(i int) int64 {
	if i >= len(a.words) {
		a.t.Fatalf("%q: missing argument %d", a.command, i+1)
	}
	n, err := strconv.ParseInt(a.words[i], 10, 64)
	if err != nil {
		a.t.Fatalf("%q: %q is not a number", a.command, a.words[i])
	}
	return n
}

func (a *goldenArgs) has(word string) bool {
	for _, w := range a.words {
		if w == word {
			return true
		}
	}
	return false
}

// config applies the Kafka config keys given to cfg.
func (a *goldenArgs) config(cfg Config) Config {
	for key, field := range map[string]*int64{
		"segment.bytes": &cfg.SegmentBytes, "segment.ms": &cfg.SegmentMs,
		"index.interval.bytes": &cfg.IndexIntervalBytes, "segment.index.bytes": &cfg.SegmentIndexBytes,
		"retention.ms": &cfg.RetentionMs, "retention.bytes": &cfg.RetentionBytes, "flush.ms": &cfg.FlushMs,
	} {
		*field = a.int(key, *field)
	}
	if v, ok := a.kv["flush"]; ok {
		p, err := ParseFlushPolicy(v)
		noErr(a.t, err)
		cfg.FlushPolicy = p
	}
	return cfg
}

func (g *goldenLog) open(args *goldenArgs) string {
	g.close()
	cfg := DefaultConfig()
	// MemFS zero-fills preallocated index files: Kafka's 10 MiB made these
	// stories slow for nothing.
	cfg.RetentionMs, cfg.SegmentIndexBytes = -1, 64<<10
	g.cfg = args.config(cfg)
	g.fs = vfs.NewMem()
	g.files = NewFileCache(int(args.int("files", DefaultOpenSealedSegments)))
	g.openLog(Options{})
	return g.segments()
}

func (g *goldenLog) openLog(opts Options) {
	opts.Config, opts.Clock, opts.Files, opts.Logger = g.cfg, g.clock, g.files, quietLogger
	l, err := Open(g.fs, goldenDir, opts)
	noErr(g.t, err)
	g.log = l
}

func (g *goldenLog) append(args *goldenArgs) string {
	n, size := int(args.int("n", 1)), int(args.int("size", 100))
	ts, step := args.int("ts", 0), args.int("ts-step", 0)
	opts := AppendOptions{LeaderEpoch: -1, LogAppendTime: args.has("log-append-time")}
	var first, last int64
	var sizes []string
	for i := int64(0); i < args.int("batches", 1); i++ {
		batch := testBatch(g.t, "g", n, size, ts+i*step)
		info, err := g.log.Append(batch, opts)
		if err != nil {
			return "error: " + goldenError(err)
		}
		if i == 0 {
			first = info.FirstOffset
		}
		last = info.LastOffset
		if s := strconv.Itoa(len(batch)); len(sizes) == 0 || sizes[len(sizes)-1] != s {
			sizes = append(sizes, s)
		}
	}
	return fmt.Sprintf("offsets %d..%d (batches of %s bytes); %s", first, last, strings.Join(sizes, ","), g.offsets())
}

func (g *goldenLog) reopen(args *goldenArgs) string {
	end, start := g.log.LogEndOffset(), g.log.LogStartOffset()
	noErr(g.t, g.log.Close())
	// As the manager does: the log start offset comes from its checkpoint.
	opts := Options{LogStartOffset: start}
	switch {
	case args.has("clean"):
		opts.RecoveryPoint, opts.CleanShutdown = end, true
	case args.has("recover"):
	default:
		opts.RecoveryPoint = args.int("recovery-point", 0)
	}
	g.openLog(opts)
	return g.segments()
}

func (g *goldenLog) offsets() string {
	return fmt.Sprintf("log start %d, log end %d", g.log.LogStartOffset(), g.log.LogEndOffset())
}

func (g *goldenLog) read(args *goldenArgs) string {
	opts := ReadOptions{MaxBytes: int(args.int("max", 1<<20)), MaxOffset: args.int("hw", NoMaxOffset), MinOneBatch: args.has("min-one")}
	s, err := g.log.Read(args.word(0), opts)
	if err != nil {
		return "error: " + goldenError(err)
	}
	defer s.Release()
	buf, err := s.AppendTo(nil)
	noErr(g.t, err)
	if len(buf) == 0 {
		return "empty"
	}
	var lines []string
	for rest := buf; len(rest) > 0; {
		batch, next, h, err := record.NextBatch(rest)
		if err != nil {
			lines = append(lines, fmt.Sprintf("partial batch (%d bytes)", len(rest)))
			break
		}
		lines = append(lines, fmt.Sprintf("batch %d..%d (%d bytes, max timestamp %d)", h.BaseOffset, h.LastOffset(), len(batch), h.MaxTimestamp))
		rest = next
	}
	return strings.Join(lines, "\n")
}

func goldenTimestamp(r TimestampOffset, ok bool, err error) string {
	switch {
	case err != nil:
		return "error: " + goldenError(err)
	case !ok:
		return "none"
	}
	return fmt.Sprintf("offset %d timestamp %d", r.Offset, r.Timestamp)
}

// goldenError names a domain error without the paths and numbers around it.
func goldenError(err error) string {
	for _, e := range []error{ErrOffsetOutOfRange, ErrRecordBatchTooLarge, ErrClosed, ErrStorage, ErrInvalidRecords} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return err.Error()
}

// segments lists each segment with the index entries readers use: the
// active one's in memory, a sealed one's as the file cache loads them.
func (g *goldenLog) segments() string {
	l := g.log
	l.mu.Lock()
	segs := append([]*segment(nil), l.segments...)
	l.mu.Unlock()
	lines := []string{g.offsets()}
	for _, s := range segs {
		l.mu.Lock()
		state, size, next := "active", s.size, s.nextOffset
		offsets, times := s.offsets.len(), s.times.len()
		sealed := s.sealed
		l.mu.Unlock()
		if sealed {
			ref, err := s.file.acquire()
			noErr(g.t, err)
			state, offsets, times = "sealed", ref.indexes.offsets.len(), ref.indexes.times.len()
			ref.release()
		}
		lines = append(lines, fmt.Sprintf("%020d size=%d next=%d %s index=%d timeindex=%d", s.baseOffset, size, next, state, offsets, times))
	}
	return strings.Join(lines, "\n")
}

func (g *goldenLog) ls() string {
	names, err := g.fs.List(goldenDir)
	noErr(g.t, err)
	var lines []string
	for _, name := range names {
		info, err := g.fs.Stat(filepath.Join(goldenDir, name))
		noErr(g.t, err)
		lines = append(lines, fmt.Sprintf("%s %d", name, info.Size()))
	}
	if len(lines) == 0 {
		return "empty"
	}
	return strings.Join(lines, "\n")
}
