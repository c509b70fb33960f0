// Package controlplane runs Sluice's controller on the Raft quorum and gives
// the rest of the node its view of the cluster metadata: the current Image,
// a way to wait for newer ones, and Submit, which has a command decided by
// the active controller (the Raft leader), committed, and replayed
// everywhere before it answers.
//
// One committed Raft entry is the whole batch of records one decision
// emitted, so a command's effect is atomic: a crash or a leader change never
// leaves half a topic behind.
package controlplane

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/sluicelog/sluice/internal/metadata"
)

// Entry format (a Raft entry's data), which must not change:
//
//	uvarint   count of records
//	count × { uvarint length, record (metadata.AppendRecord encoding) }
func appendEntry(dst []byte, records []metadata.Record) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(records)))
	var scratch []byte
	for _, r := range records {
		scratch = metadata.AppendRecord(scratch[:0], r)
		dst = binary.AppendUvarint(dst, uint64(len(scratch)))
		dst = append(dst, scratch...)
	}
	return dst
}

var errBadEntry = errors.New("metadata entry malformed")

func decodeEntry(data []byte) ([]metadata.Record, error) {
	count, n := binary.Uvarint(data)
	if n <= 0 || count > uint64(len(data)) {
		return nil, fmt.Errorf("%w: record count", errBadEntry)
	}
	data = data[n:]
	records := make([]metadata.Record, 0, count)
	for i := uint64(0); i < count; i++ {
		size, n := binary.Uvarint(data)
		if n <= 0 || size > uint64(len(data)-n) {
			return nil, fmt.Errorf("%w: record %d length", errBadEntry, i)
		}
		r, err := metadata.DecodeRecord(data[n : n+int(size)])
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		records = append(records, r)
		data = data[n+int(size):]
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errBadEntry, len(data))
	}
	return records, nil
}

// imageState is the quorum's state machine: it replays committed entries
// into Images and publishes each new one to waiters.
type imageState struct {
	mu      sync.Mutex
	image   *metadata.Image
	changed chan struct{} // closed and replaced when the image changes
}

func newImageState() *imageState {
	return &imageState{image: metadata.EmptyImage(), changed: make(chan struct{})}
}

// Apply replays one committed entry. A replay error means the log holds
// records this code cannot apply: it is reported, and the image stays as it
// was, so every member fails the same way instead of diverging.
func (s *imageState) Apply(index uint64, data []byte) error {
	records, err := decodeEntry(data)
	if err != nil {
		return fmt.Errorf("metadata entry %d: %w", index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delta := metadata.NewDelta(s.image)
	for _, r := range records {
		if err := delta.Replay(r); err != nil {
			return fmt.Errorf("metadata entry %d: %w", index, err)
		}
	}
	s.publishLocked(delta.Apply(int64(index)))
	return nil
}

func (s *imageState) Snapshot() ([]byte, error) {
	s.mu.Lock()
	img := s.image
	s.mu.Unlock()
	return metadata.AppendSnapshot(nil, img), nil
}

func (s *imageState) Restore(index uint64, data []byte) error {
	img, err := metadata.DecodeSnapshot(data)
	if err != nil {
		return fmt.Errorf("metadata snapshot at %d: %w", index, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishLocked(img)
	return nil
}

func (s *imageState) publishLocked(img *metadata.Image) {
	s.image = img
	close(s.changed)
	s.changed = make(chan struct{})
}

// current returns the image and a channel closed when a newer one exists.
func (s *imageState) current() (*metadata.Image, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.image, s.changed
}
