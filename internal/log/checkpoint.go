package log

import (
	"bufio"
	"bytes"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/vfs"
)

// Checkpoint file format (recovery-point-offset-checkpoint,
// log-start-offset-checkpoint), Kafka's text format, which must not change:
//
//	0                      version
//	2                      number of entries
//	orders 0 1200          topic, partition, offset
//	orders 1 1187
const checkpointVersion = 0

// TopicPartition names a partition; its log lives in "<topic>-<partition>".
type TopicPartition struct {
	Topic     string
	Partition int32
}

// String is the partition's directory name.
func (tp TopicPartition) String() string {
	return tp.Topic + "-" + strconv.FormatInt(int64(tp.Partition), 10)
}

// ParseTopicPartition reads a log directory name. The partition follows the
// last '-', since topic names may contain '-'.
func ParseTopicPartition(name string) (TopicPartition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return TopicPartition{}, false
	}
	p, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || p < 0 {
		return TopicPartition{}, false
	}
	return TopicPartition{Topic: name[:i], Partition: int32(p)}, true
}

// WriteOffsetCheckpoint writes offsets per partition in Kafka's checkpoint
// format, as the partition layer's replication-offset-checkpoint (high
// watermarks) needs; see writeCheckpoint.
func WriteOffsetCheckpoint(fsys vfs.FS, path string, offsets map[TopicPartition]int64) error {
	return writeCheckpoint(fsys, path, offsets)
}

// ReadOffsetCheckpoint reads a file WriteOffsetCheckpoint wrote; a missing
// file is empty.
func ReadOffsetCheckpoint(fsys vfs.FS, path string) (map[TopicPartition]int64, error) {
	return readCheckpoint(fsys, path)
}

// writeCheckpoint replaces a checkpoint file atomically: write a temporary
// file, fsync it, rename it over the old one, fsync the directory. A crash
// leaves either the old file or the new one, never a mix.
func writeCheckpoint(fsys vfs.FS, path string, offsets map[TopicPartition]int64) error {
	tps := make([]TopicPartition, 0, len(offsets))
	for tp := range offsets {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n%d\n", checkpointVersion, len(tps))
	for _, tp := range tps {
		fmt.Fprintf(&b, "%s %d %d\n", tp.Topic, tp.Partition, offsets[tp])
	}
	return vfs.WriteFileAtomic(fsys, path, b.Bytes())
}

// readCheckpoint reads a checkpoint file; a missing file is empty.
func readCheckpoint(fsys vfs.FS, path string) (map[TopicPartition]int64, error) {
	data, err := readWholeFile(fsys, path)
	if isNotExist(err) {
		return map[TopicPartition]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	offsets, err := parseCheckpoint(data)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return offsets, nil
}

func parseCheckpoint(data []byte) (map[TopicPartition]int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := func() (string, bool) { ok := sc.Scan(); return sc.Text(), ok }
	version, ok := line()
	if !ok || version != strconv.Itoa(checkpointVersion) {
		return nil, fmt.Errorf("unsupported version %q", version)
	}
	countText, _ := line()
	count, err := strconv.Atoi(countText)
	if err != nil || count < 0 {
		return nil, fmt.Errorf("bad entry count %q", countText)
	}
	offsets := make(map[TopicPartition]int64, min(count, 1<<16))
	for i := 0; i < count; i++ {
		text, ok := line()
		fields := strings.Fields(text)
		if !ok || len(fields) != 3 {
			return nil, fmt.Errorf("entry %d: %q is not 'topic partition offset'", i, text)
		}
		p, err1 := strconv.ParseInt(fields[1], 10, 32)
		off, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 || off < 0 {
			return nil, fmt.Errorf("entry %d: %q has a bad number", i, text)
		}
		offsets[TopicPartition{Topic: fields[0], Partition: int32(p)}] = off
	}
	if extra, ok := line(); ok && strings.TrimSpace(extra) != "" {
		return nil, fmt.Errorf("more entries than the count %d", count)
	}
	return offsets, nil
}
