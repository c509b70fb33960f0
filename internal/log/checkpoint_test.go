package log

import (
	"maps"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
)

func TestCheckpointRoundTrip(t *testing.T) {
	fsys := vfs.NewMem()
	noErr(t, fsys.MkdirAll("/data", 0o755))
	offsets := map[TopicPartition]int64{
		{"orders", 0}: 1200, {"orders", 1}: 1187, {"orders", 10}: 0,
		{"my-topic", 3}: 42, {"a-b-c", 2147483647}: 1 << 62, {"__consumer_offsets", 49}: 7,
	}
	for i := 0; i < 500; i++ {
		offsets[TopicPartition{"many", int32(i)}] = int64(i) * 1000
	}
	path := "/data/" + recoveryPointCheckpointFile
	noErr(t, writeCheckpoint(fsys, path, offsets))
	got, err := readCheckpoint(fsys, path)
	noErr(t, err)
	require(t, maps.Equal(got, offsets), "read back %d entries, wrote %d; differ", len(got), len(offsets))

	// Overwriting replaces every entry.
	noErr(t, writeCheckpoint(fsys, path, map[TopicPartition]int64{{"orders", 0}: 1}))
	got, err = readCheckpoint(fsys, path)
	noErr(t, err)
	require(t, len(got) == 1 && got[TopicPartition{"orders", 0}] == 1, "after overwrite: %v", got)

	noErr(t, writeCheckpoint(fsys, path, nil))
	got, err = readCheckpoint(fsys, path)
	noErr(t, err)
	require(t, len(got) == 0, "empty checkpoint read back %v", got)
}

// The files are Kafka's, byte for byte: tools and an operator's habits rely
// on them. Entries are sorted so the file is deterministic.
func TestCheckpointKafkaFormat(t *testing.T) {
	fsys := vfs.NewMem()
	path := "/" + logStartOffsetCheckpointFile
	noErr(t, writeCheckpoint(fsys, path, map[TopicPartition]int64{
		{"topic", 0}: 12, {"my-topic", 10}: 5, {"my-topic", 2}: 7, {"a", 1}: 0,
	}))
	got := string(readFileForTest(t, fsys, path))
	want := "0\n4\na 1 0\nmy-topic 2 7\nmy-topic 10 5\ntopic 0 12\n"
	require(t, got == want, "checkpoint file:\n%q\nwant:\n%q", got, want)

	noErr(t, writeCheckpoint(fsys, path, nil))
	got = string(readFileForTest(t, fsys, path))
	require(t, got == "0\n0\n", "empty checkpoint %q", got)
}

func TestCheckpointMissingFileIsEmpty(t *testing.T) {
	got, err := readCheckpoint(vfs.NewMem(), "/nowhere/"+recoveryPointCheckpointFile)
	noErr(t, err)
	require(t, len(got) == 0, "missing file read as %v", got)
}

// A checkpoint that cannot be parsed must fail the open: guessing a
// recovery point could skip validating unsynced data.
func TestCheckpointMalformedRejected(t *testing.T) {
	for _, c := range []struct{ name, data string }{
		{"empty file", ""},
		{"unknown version", "1\n0\n"},
		{"version not a number", "x\n0\n"},
		{"no count", "0\n"},
		{"count not a number", "0\ntwo\n"},
		{"negative count", "0\n-1\n"},
		{"fewer entries than the count", "0\n2\norders 0 5\n"},
		{"more entries than the count", "0\n1\norders 0 5\norders 1 6\n"},
		{"entry missing the offset", "0\n1\norders 0\n"},
		{"entry with a fourth field", "0\n1\norders 0 5 9\n"},
		{"partition not a number", "0\n1\norders x 5\n"},
		{"negative partition", "0\n1\norders -1 5\n"},
		{"partition past int32", "0\n1\norders 2147483648 5\n"},
		{"offset not a number", "0\n1\norders 0 five\n"},
		{"negative offset", "0\n1\norders 0 -5\n"},
		{"offset past int64", "0\n1\norders 0 9223372036854775808\n"},
		{"blank entry", "0\n1\n\n"},
	} {
		_, err := parseCheckpoint([]byte(c.data))
		require(t, err != nil, "%s: %q accepted", c.name, c.data)

		fsys := vfs.NewMem()
		noErr(t, fsys.MkdirAll("/data", 0o755))
		path := "/data/" + recoveryPointCheckpointFile
		writeFileForTest(t, fsys, path, []byte(c.data))
		_, err = readCheckpoint(fsys, path)
		require(t, err != nil && strings.Contains(err.Error(), path), "%s: readCheckpoint error %v does not name the file", c.name, err)
	}
	// What Kafka tolerates: a trailing newline-only line, runs of spaces.
	for _, data := range []string{"0\n1\norders 0 5\n\n", "0\n1\norders  0   5\n", "0\n0"} {
		_, err := parseCheckpoint([]byte(data))
		noErr(t, err)
	}
}

// The write goes to a temporary file that is fsynced and renamed over the
// old one: success leaves no temporary file, a failed rename leaves the old
// checkpoint whole, and a crash right after the write keeps the new one.
func TestCheckpointAtomicWrite(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem)
	noErr(t, efs.MkdirAll("/data", 0o755))
	path := "/data/" + recoveryPointCheckpointFile
	old := map[TopicPartition]int64{{"orders", 0}: 100}
	noErr(t, writeCheckpoint(efs, path, old))
	names, err := efs.List("/data")
	noErr(t, err)
	require(t, len(names) == 1 && names[0] == recoveryPointCheckpointFile, "after a write the directory holds %v", names)

	for _, op := range []vfs.Op{vfs.OpWrite, vfs.OpSync, vfs.OpRename} {
		efs.Inject(vfs.Rule{Op: op, PathContains: recoveryPointCheckpointFile})
		err := writeCheckpoint(efs, path, map[TopicPartition]int64{{"orders", 0}: 200})
		require(t, err != nil && efs.Injected() > 0, "%v failure: write reported %v", op, err)
		efs.Clear()
		got, err := readCheckpoint(efs, path)
		noErr(t, err)
		require(t, maps.Equal(got, old), "after a failed %v the checkpoint reads %v", op, got)
	}
	// The next successful write replaces the leftover temporary file too.
	noErr(t, writeCheckpoint(efs, path, map[TopicPartition]int64{{"orders", 0}: 300}))
	names, err = efs.List("/data")
	noErr(t, err)
	require(t, len(names) == 1, "a temporary file was left behind: %v", names)

	mem.Crash(rand.New(rand.NewPCG(1, 2)))
	got, err := readCheckpoint(mem, path)
	noErr(t, err)
	require(t, got[TopicPartition{"orders", 0}] == 300, "after a crash the checkpoint reads %v", got)
}

func TestCheckpointParseTopicPartition(t *testing.T) {
	for _, c := range []struct {
		name string
		want TopicPartition
	}{
		{"orders-0", TopicPartition{"orders", 0}},
		{"orders-17", TopicPartition{"orders", 17}},
		{"my-topic-3", TopicPartition{"my-topic", 3}}, // the partition follows the last '-'
		{"a-b-c-2147483647", TopicPartition{"a-b-c", 2147483647}},
		{"__consumer_offsets-49", TopicPartition{"__consumer_offsets", 49}},
		{"dots.and_underscores-1", TopicPartition{"dots.and_underscores", 1}},
		{"trailing--1", TopicPartition{"trailing-", 1}},
	} {
		got, ok := ParseTopicPartition(c.name)
		require(t, ok && got == c.want, "%q: got %+v ok=%v, want %+v", c.name, got, ok, c.want)
		require(t, got.String() == c.name, "%+v prints as %q, want %q", got, got.String(), c.name)
	}
	for _, name := range []string{
		"", "orders", "-0", "orders-", "orders-x", "orders-1x", "orders-2147483648",
		"orders-99999999999999999999",
		// Kafka's directories of partitions being deleted or moved.
		"orders-0.0a1b2c3d4e5f-delete", "orders-0.0a1b2c3d4e5f-future", "orders-0.0a1b2c3d4e5f-stray",
		recoveryPointCheckpointFile, logStartOffsetCheckpointFile, recoveryPointCheckpointFile + tmpSuffix,
		"meta.properties", cleanShutdownFile,
	} {
		got, ok := ParseTopicPartition(name)
		require(t, !ok, "%q parsed as %+v", name, got)
	}
}
