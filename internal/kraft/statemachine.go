// Package kraft runs Sluice's controller on the Raft quorum, as Kafka's KRaft
// mode does, and gives every node (voter or learner) its view of the cluster
// metadata: the current Image, a way to wait for newer ones, and Submit,
// which has a command decided by the active controller (the Raft leader),
// committed, and replayed everywhere before it answers. The decisions are
// internal/controller's and the replication internal/raft's; this package
// is the glue that makes them Kafka's controller as each node sees it. Its
// main type keeps the name ControlPlane: it is the node's control plane.
//
// One committed Raft entry is the whole batch of records one decision
// emitted, so a command's effect is atomic: a crash or a leader change never
// leaves half a topic behind.
package kraft

import (
	"fmt"
	"sync"

	"github.com/sluicelog/sluice/internal/metadata"
)

// imageState is the quorum's state machine: it replays committed entries
// (each the list of records one decision emitted, in metadata's record list
// format) into Images and publishes each new one to waiters.
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
	records, err := metadata.DecodeRecords(data)
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

// Snapshot encodes the current image. Images are immutable, so the lock is
// held only to read the pointer, and encoding does not stall Apply.
func (s *imageState) Snapshot() ([]byte, error) {
	s.mu.Lock()
	img := s.image
	s.mu.Unlock()
	return metadata.AppendSnapshot(nil, img), nil
}

// Restore replaces the image with a snapshot's, at start-up or when a
// lagging member is sent one; watchers are woken as for any new image.
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

// publishLocked installs img and wakes every watcher by closing the old
// channel: a close reaches any number of waiters, and a waiter that comes
// later gets the new channel with the new image, so no change is missed.
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
