package raft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sluicelog/sluice/internal/vfs"
)

// ErrCorrupt reports a quorum file that fails its checks (magic, version,
// length or CRC). The node refuses to start rather than guess: a controller
// that forgot its vote could vote twice in one term.
var ErrCorrupt = errors.New("quorum state corrupt")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// The hard state file. Its format must not change; a new layout gets a new
// version byte and this code keeps reading the old one.
//
//	offset size field (big-endian)
//	     0    4 magic "SLQH"
//	     4    1 version (1)
//	     5    8 term
//	    13    8 vote: the node id voted for in term, 0 for none
//	    21    8 commit: a committed index (may lag; Raft relearns it)
//	    29    4 CRC-32C (Castagnoli) of bytes 0-28
const (
	hardStateFile    = "quorum-state"
	hardStateMagic   = "SLQH"
	hardStateVersion = 1
	hardStateSize    = 33
)

func encodeHardState(hs *raftpb.HardState) []byte {
	b := make([]byte, hardStateSize)
	copy(b, hardStateMagic)
	b[4] = hardStateVersion
	binary.BigEndian.PutUint64(b[5:], hs.GetTerm())
	binary.BigEndian.PutUint64(b[13:], hs.GetVote())
	binary.BigEndian.PutUint64(b[21:], hs.GetCommit())
	binary.BigEndian.PutUint32(b[29:], crc32.Checksum(b[:29], castagnoli))
	return b
}

func decodeHardState(b []byte) (*raftpb.HardState, error) {
	if len(b) != hardStateSize || string(b[:4]) != hardStateMagic {
		return nil, fmt.Errorf("%s: %d bytes, bad size or magic: %w", hardStateFile, len(b), ErrCorrupt)
	}
	if b[4] != hardStateVersion {
		return nil, fmt.Errorf("%s: version %d: %w", hardStateFile, b[4], ErrCorrupt)
	}
	if crc32.Checksum(b[:29], castagnoli) != binary.BigEndian.Uint32(b[29:]) {
		return nil, fmt.Errorf("%s: CRC mismatch: %w", hardStateFile, ErrCorrupt)
	}
	return &raftpb.HardState{
		Term:   new(binary.BigEndian.Uint64(b[5:])),
		Vote:   new(binary.BigEndian.Uint64(b[13:])),
		Commit: new(binary.BigEndian.Uint64(b[21:])),
	}, nil
}

// A snapshot file, named "<index, 20 digits>-<term, 20 digits>.checkpoint" so
// a directory listing sorts oldest first. Its format must not change; a new
// layout gets a new version byte.
//
//	offset  size field (big-endian)
//	     0     4 magic "SLQP"
//	     4     1 version (1)
//	     5     8 index: the last log index the snapshot covers
//	    13     8 term of that entry
//	    21     4 n: length of the conf state
//	    25     n conf state (raftpb.ConfState, protobuf)
//	  25+n     8 m: length of the state machine's data
//	  33+n     m data, as StateMachine.Snapshot returned it
//	33+n+m     4 CRC-32C (Castagnoli) of everything before
const (
	snapshotSuffix  = ".checkpoint"
	snapshotMagic   = "SLQP"
	snapshotVersion = 1
	// snapshotOverhead is every byte of a snapshot file but the conf state
	// and the data.
	snapshotOverhead = 37
	// maxSnapshotBytes bounds a snapshot file, so reading one never
	// allocates without limit, and so a snapshot always fits one transport
	// frame with its envelope.
	maxSnapshotBytes = maxFrameBytes - 1<<20
	tmpSuffix        = vfs.TempSuffix
)

func snapshotFileName(index, term uint64) string {
	return fmt.Sprintf("%020d-%020d%s", index, term, snapshotSuffix)
}

// parseSnapshotFileName returns the index and term a snapshot file name
// carries.
func parseSnapshotFileName(name string) (index, term uint64, ok bool) {
	stem, found := strings.CutSuffix(name, snapshotSuffix)
	if !found || len(stem) != 41 || stem[20] != '-' {
		return 0, 0, false
	}
	index, err1 := strconv.ParseUint(stem[:20], 10, 64)
	term, err2 := strconv.ParseUint(stem[21:], 10, 64)
	return index, term, err1 == nil && err2 == nil
}

func encodeSnapshot(snap *raftpb.Snapshot) ([]byte, error) {
	cs, err := proto.Marshal(snap.GetMetadata().GetConfState())
	if err != nil {
		return nil, fmt.Errorf("encode conf state: %w", err)
	}
	data := snap.GetData()
	size := snapshotOverhead + len(cs) + len(data)
	if size > maxSnapshotBytes {
		return nil, fmt.Errorf("snapshot of %d bytes: %w (%d)", size, ErrSnapshotTooLarge, maxSnapshotBytes)
	}
	b := make([]byte, 0, size)
	b = append(b, snapshotMagic...)
	b = append(b, snapshotVersion)
	b = binary.BigEndian.AppendUint64(b, snap.GetMetadata().GetIndex())
	b = binary.BigEndian.AppendUint64(b, snap.GetMetadata().GetTerm())
	b = binary.BigEndian.AppendUint32(b, uint32(len(cs)))
	b = append(b, cs...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(data)))
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli)), nil
}

// decodeSnapshot parses a snapshot file. The data aliases b.
func decodeSnapshot(b []byte) (*raftpb.Snapshot, error) {
	if len(b) < snapshotOverhead || string(b[:4]) != snapshotMagic || b[4] != snapshotVersion {
		return nil, fmt.Errorf("snapshot: bad size, magic or version: %w", ErrCorrupt)
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		return nil, fmt.Errorf("snapshot: CRC mismatch: %w", ErrCorrupt)
	}
	index, term := binary.BigEndian.Uint64(body[5:]), binary.BigEndian.Uint64(body[13:])
	csLen := uint64(binary.BigEndian.Uint32(body[21:]))
	rest := body[25:]
	if csLen > uint64(len(rest))-8 || uint64(len(rest)) < 8 {
		return nil, fmt.Errorf("snapshot: conf state length %d: %w", csLen, ErrCorrupt)
	}
	cs := &raftpb.ConfState{}
	if err := proto.Unmarshal(rest[:csLen], cs); err != nil {
		return nil, fmt.Errorf("snapshot: conf state: %v: %w", err, ErrCorrupt)
	}
	rest = rest[csLen:]
	dataLen := binary.BigEndian.Uint64(rest)
	if dataLen != uint64(len(rest))-8 {
		return nil, fmt.Errorf("snapshot: data length %d of %d bytes: %w", dataLen, len(rest)-8, ErrCorrupt)
	}
	return &raftpb.Snapshot{
		Data:     rest[8:],
		Metadata: &raftpb.SnapshotMetadata{ConfState: raftpb.EnsureConfState(cs), Index: new(index), Term: new(term)},
	}, nil
}

// readFileBounded reads a whole quorum file; one over its limit is corrupt.
func readFileBounded(fsys vfs.FS, path string, limit int64) ([]byte, error) {
	b, err := vfs.ReadFile(fsys, path, limit)
	if errors.Is(err, vfs.ErrFileTooLarge) {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return b, err
}

// snapshotFile names one checkpoint file in the quorum directory.
type snapshotFile struct {
	index, term uint64
	name        string
}

// listSnapshots returns the checkpoint files in dir, oldest first, and
// removes leftover temporary files of interrupted atomic writes.
func listSnapshots(fsys vfs.FS, dir string) ([]snapshotFile, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, err
	}
	var files []snapshotFile
	for _, name := range names {
		if strings.HasSuffix(name, tmpSuffix) {
			if err := fsys.Remove(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("remove leftover %s: %w", name, err)
			}
			continue
		}
		if index, term, ok := parseSnapshotFileName(name); ok {
			files = append(files, snapshotFile{index: index, term: term, name: name})
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].index < files[j].index })
	return files, nil
}
