package share

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/sluicelog/sluice/internal/coord/sharegroup"
	"github.com/sluicelog/sluice/internal/vfs"
)

// StateDirName is the directory under log.dirs that holds the share
// partitions' state files, one directory per group (its id in hex, so any
// group id is a safe file name) and one file per topic partition:
//
//	<log.dirs>/share-group-state/<hex(group id)>/<topic>-<partition>
//
// The name does not end in -<number>, so the log directory never mistakes
// it for a partition.
const StateDirName = "share-group-state"

// A state file, written whole with vfs.WriteFileAtomic (big-endian):
//
//	version       int16   stateFileVersion
//	stateEpoch    int32
//	startOffset   int64   the SPSO
//	batchCount    int32
//	batches       batchCount × { firstOffset int64, lastOffset int64,
//	                             state int8, deliveryCount int16 }
//	crc           uint32  CRC-32C of everything before it
//
// This layout must not change; a new layout takes a new version.
const (
	stateFileVersion  = 1
	stateHeaderBytes  = 2 + 4 + 8 + 4
	stateBatchBytes   = 8 + 8 + 1 + 2
	stateTrailerBytes = 4
)

// ErrCorruptState: a share state file failed its checksum or is malformed.
var ErrCorruptState = errors.New("corrupt share partition state file")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func statePath(dir, group, topic string, partition int32) string {
	return filepath.Join(dir, StateDirName, hex.EncodeToString([]byte(group)), topic+"-"+strconv.Itoa(int(partition)))
}

func encodeState(st sharegroup.PartitionState) []byte {
	b := make([]byte, 0, stateHeaderBytes+len(st.Batches)*stateBatchBytes+stateTrailerBytes)
	b = binary.BigEndian.AppendUint16(b, stateFileVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(st.StateEpoch))
	b = binary.BigEndian.AppendUint64(b, uint64(st.StartOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(len(st.Batches)))
	for _, batch := range st.Batches {
		b = binary.BigEndian.AppendUint64(b, uint64(batch.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(batch.LastOffset))
		b = append(b, byte(batch.State))
		b = binary.BigEndian.AppendUint16(b, uint16(batch.DeliveryCount))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

func decodeState(b []byte) (sharegroup.PartitionState, error) {
	var st sharegroup.PartitionState
	if len(b) < stateHeaderBytes+stateTrailerBytes {
		return st, fmt.Errorf("%d bytes: %w", len(b), ErrCorruptState)
	}
	body, sum := b[:len(b)-stateTrailerBytes], binary.BigEndian.Uint32(b[len(b)-stateTrailerBytes:])
	if crc32.Checksum(body, castagnoli) != sum {
		return st, fmt.Errorf("checksum: %w", ErrCorruptState)
	}
	if v := binary.BigEndian.Uint16(body); v != stateFileVersion {
		return st, fmt.Errorf("version %d: %w", v, ErrCorruptState)
	}
	st.StateEpoch = int32(binary.BigEndian.Uint32(body[2:]))
	st.StartOffset = int64(binary.BigEndian.Uint64(body[6:]))
	n := int(binary.BigEndian.Uint32(body[14:]))
	rest := body[stateHeaderBytes:]
	if n < 0 || n*stateBatchBytes != len(rest) {
		return st, fmt.Errorf("%d batches in %d bytes: %w", n, len(rest), ErrCorruptState)
	}
	st.Batches = make([]sharegroup.StateBatch, n)
	for i := range st.Batches {
		r := rest[i*stateBatchBytes:]
		st.Batches[i] = sharegroup.StateBatch{
			FirstOffset:   int64(binary.BigEndian.Uint64(r)),
			LastOffset:    int64(binary.BigEndian.Uint64(r[8:])),
			State:         sharegroup.RecordState(r[16]),
			DeliveryCount: int16(binary.BigEndian.Uint16(r[17:])),
		}
	}
	return st, nil
}

// readState loads a share partition's state; found is false when it has
// none yet.
func readState(fsys vfs.FS, path string, maxBatches int) (st sharegroup.PartitionState, found bool, err error) {
	limit := int64(stateHeaderBytes + maxBatches*stateBatchBytes + stateTrailerBytes)
	b, err := vfs.ReadFile(fsys, path, limit)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, fmt.Errorf("share state %s: %w", path, err)
	}
	st, err = decodeState(b)
	if err != nil {
		return st, false, fmt.Errorf("share state %s: %w", path, err)
	}
	return st, true, nil
}

// stateDirs makes the directories of a group's state files durable once
// per process: a directory entry created and not synced can vanish in a
// crash with the files under it, after their acknowledgements were
// answered.
type stateDirs struct {
	fs    vfs.FS
	root  string // log.dirs
	mu    sync.Mutex
	ready map[string]bool
}

func (d *stateDirs) write(path string, st sharegroup.PartitionState) error {
	if err := d.makeDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("share state %s: %w", path, err)
	}
	return vfs.WriteFileAtomic(d.fs, path, encodeState(st))
}

func (d *stateDirs) makeDir(dir string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ready[dir] {
		if err := d.fs.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for _, parent := range []string{d.root, filepath.Join(d.root, StateDirName)} {
			if err := d.fs.SyncDir(parent); err != nil {
				return fmt.Errorf("sync %s: %w", parent, err)
			}
		}
		d.ready[dir] = true
	}
	return nil
}

// removeGroup deletes a group's state files and makes the deletion
// durable, so a group created again under the same id starts afresh.
func (d *stateDirs) removeGroup(group string) error {
	root := filepath.Join(d.root, StateDirName)
	dir := filepath.Join(root, hex.EncodeToString([]byte(group)))
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.ready, dir)
	if err := d.fs.RemoveAll(dir); err != nil {
		return fmt.Errorf("share state of group %q: %w", group, err)
	}
	if err := d.fs.SyncDir(root); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("share state of group %q: sync %s: %w", group, root, err)
	}
	return nil
}
