package partition

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/vfs"
)

// blockingFS holds up creating the directory of every partition log but
// one until released: a Refresh whose workers are all stuck on slow disks.
type blockingFS struct {
	vfs.FS
	free    string // the one directory not held up
	release chan struct{}
	once    sync.Once
}

func (b *blockingFS) MkdirAll(path string, perm os.FileMode) error {
	if strings.HasPrefix(path, "/data/t-") && path != b.free {
		<-b.release
	}
	return b.FS.MkdirAll(path, perm)
}

func (b *blockingFS) unblock() { b.once.Do(func() { close(b.release) }) }

// TestPartitionRequestDoesNotWaitForTheWholeRefresh: while a Refresh opens
// many new partitions, a request for one it has not reached yet opens that
// one itself instead of waiting for all of them (after creating 10,000
// partitions, ListOffsets and DescribeLogDirs waited 40-50 s).
func TestPartitionRequestDoesNotWaitForTheWholeRefresh(t *testing.T) {
	const partitions = hostParallelism + 8
	f := newFixture(t)
	bfs := &blockingFS{FS: vfs.NewMem(), free: fmt.Sprintf("/data/t-%d", partitions-1), release: make(chan struct{})}
	defer bfs.unblock()
	f.open(bfs)
	replicas := make([][]int32, partitions)
	for i := range replicas {
		replicas[i] = []int32{testNode}
	}
	f.createTopic("t", 1, nil, replicas...)
	refreshed := make(chan error, 1)
	go func() { refreshed <- f.mgr.Refresh() }()
	// Until the Refresh has listed its jobs a request cannot know its
	// partition is coming, and waits for the Refresh as before.
	for {
		f.mgr.mu.RLock()
		listed := f.mgr.pending != nil
		f.mgr.mu.RUnlock()
		if listed {
			break
		}
		time.Sleep(time.Millisecond)
	}

	got := make(chan error, 1)
	go func() {
		_, err := f.mgr.Partition("t", partitions-1)
		got <- err
	}()
	select {
	case err := <-got:
		noErr(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("a request for a pending partition waited for the whole Refresh")
	}
	select {
	case err := <-refreshed:
		t.Fatalf("the Refresh ended (%v) while its workers were held up", err)
	default:
	}

	bfs.unblock()
	noErr(t, <-refreshed)
	for i := range partitions {
		_, err := f.mgr.Partition("t", int32(i))
		noErr(t, err)
	}
}

// TestPartitionStaleRefreshDoesNotGoBack: a Refresh reads the newest image,
// then waits for the one running. If that one applied a newer image still,
// the waiting Refresh must not apply its older one after it: that image
// lacks the topics created since, so it deleted their logs, records and
// all (franz-go's suite saw "lost records" on topics it had just created
// while other topics were deleted).
func TestPartitionStaleRefreshDoesNotGoBack(t *testing.T) {
	f := newFixture(t)
	f.createTopic("old", 1, nil, []int32{testNode})
	noErr(t, f.mgr.Refresh())
	f.createTopic("mid", 2, nil, []int32{testNode})

	// The stale Refresh reads the image with "mid" and waits, as if behind
	// another Refresh.
	read := make(chan struct{}, 1)
	newest := f.mgr.opts.Image
	f.mgr.opts.Image = func() *metadata.Image {
		img := newest()
		select {
		case read <- struct{}{}:
		default:
		}
		return img
	}
	f.mgr.refreshMu.Lock()
	stale := make(chan error, 1)
	go func() { stale <- f.mgr.Refresh() }()
	<-read

	// Meanwhile the Refresh it waits for applies a newer image, with
	// "new", which takes a record.
	f.createTopic("new", 3, nil, []int32{testNode})
	img := f.image()
	noErr(t, f.mgr.refreshLocked(img))
	f.mgr.mu.Lock()
	f.mgr.image = img
	f.mgr.mu.Unlock()
	f.mgr.refreshed.Store(img)
	_, err := f.partition("new", 0).Append(f.batch(plain(1)))
	noErr(t, err)
	f.mgr.refreshMu.Unlock()

	noErr(t, <-stale)
	p := f.partition("new", 0)
	require(t, p.log.LogEndOffset() == 1, "the stale Refresh deleted new-0: log end %d, want 1", p.log.LogEndOffset())
	f.partition("mid", 0)
}
