package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sluicelog/sluice/internal/vfs"
)

// maxResetFileRows bounds --from-file: a reset names partitions, and no
// cluster has a million of them for one group.
const maxResetFileRows = 1_000_000

// readResetFile reads --from-file: CSV lines topic,partition,offset, as
// kafka-consumer-groups --reset-offsets --export writes for one group, or
// group,topic,partition,offset as it writes for several, of which only
// group's lines are taken. A partition named twice is refused, since one
// of the two offsets would be silently dropped. What the file says wrong
// is a usage error (exit 2); a file that cannot be read is a failure
// (exit 1), as any other file the command could not open.
func readResetFile(path, group string) (map[string]map[int32]int64, error) {
	f, err := vfs.OS().Open(path)
	if err != nil {
		return nil, fmt.Errorf("--from-file: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("--from-file %s: %w", path, err)
	}
	// A CSV reader rather than splitting on commas: it copes with the
	// quoting and CRLF line ends a file saved from a spreadsheet has. -1
	// fields per record lets 3- and 4-column lines mix.
	r := csv.NewReader(io.NewSectionReader(f, 0, size))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	r.Comment = '#'
	out := map[string]map[int32]int64{}
	for rows := 0; ; rows++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		// The line number for messages: FieldPos counts the file's lines,
		// comments included, so it matches what an editor shows.
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, usageErrorf("--from-file %s: %v", path, err)
		}
		if rows == maxResetFileRows {
			return nil, usageErrorf("--from-file %s: more than %d lines", path, maxResetFileRows)
		}
		if len(rec) == 4 {
			if strings.TrimSpace(rec[0]) != group {
				continue
			}
			rec = rec[1:]
		}
		topic, partition, offset, err := resetFileRow(rec)
		if err != nil {
			return nil, usageErrorf("--from-file %s line %d: %v", path, line, err)
		}
		if _, dup := out[topic][partition]; dup {
			return nil, usageErrorf("--from-file %s line %d: %s/%d is listed twice", path, line, topic, partition)
		}
		if out[topic] == nil {
			out[topic] = map[int32]int64{}
		}
		out[topic][partition] = offset
	}
	// An empty result is refused: the usual cause is a multi-group export
	// of other groups, and resetting nothing would look like success.
	if len(out) == 0 {
		return nil, usageErrorf("--from-file %s: no topic,partition,offset line (for group %q)", path, group)
	}
	return out, nil
}

// resetFileRow parses topic,partition,offset.
func resetFileRow(rec []string) (string, int32, int64, error) {
	if len(rec) != 3 {
		return "", 0, 0, errors.New("want topic,partition,offset or group,topic,partition,offset")
	}
	topic := strings.TrimSpace(rec[0])
	partition, perr := strconv.ParseInt(strings.TrimSpace(rec[1]), 10, 32)
	offset, oerr := strconv.ParseInt(strings.TrimSpace(rec[2]), 10, 64)
	switch {
	case topic == "":
		return "", 0, 0, errors.New("empty topic")
	case perr != nil || partition < 0:
		return "", 0, 0, errors.New("partition " + strconv.Quote(rec[1]) + " is not a partition number")
	case oerr != nil || offset < 0:
		return "", 0, 0, errors.New("offset " + strconv.Quote(rec[2]) + " is not an offset")
	}
	return topic, int32(partition), offset, nil
}
