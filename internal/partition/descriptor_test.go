package partition

import (
	"fmt"
	"io/fs"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/vfs"
)

// descriptorShortFS is a process that runs out of descriptors: once short,
// the rest of the process has taken every free one, so an open (or a
// directory fsync, which opens the directory) fails with EMFILE unless a
// file opened here was closed since, whose descriptor it takes.
type descriptorShortFS struct {
	vfs.FS
	mu     sync.Mutex
	short  bool
	free   int // descriptors closes gave back during the shortage
	emfile int // opens that failed so
}

func (d *descriptorShortFS) setShort(short bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.short, d.free = short, 0
}

func (d *descriptorShortFS) take(name string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case !d.short:
	case d.free > 0:
		d.free--
	default:
		d.emfile++
		return &fs.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
	}
	return nil
}

func (d *descriptorShortFS) give() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.short {
		d.free++
	}
}

func (d *descriptorShortFS) open(open func(string) (vfs.File, error), name string) (vfs.File, error) {
	if err := d.take(name); err != nil {
		return nil, err
	}
	f, err := open(name)
	if err != nil {
		d.give()
		return nil, err
	}
	return &descriptorShortFile{File: f, fs: d}, nil
}

func (d *descriptorShortFS) Create(name string) (vfs.File, error) { return d.open(d.FS.Create, name) }
func (d *descriptorShortFS) Open(name string) (vfs.File, error)   { return d.open(d.FS.Open, name) }
func (d *descriptorShortFS) OpenReadWrite(name string) (vfs.File, error) {
	return d.open(d.FS.OpenReadWrite, name)
}

func (d *descriptorShortFS) SyncDir(dir string) error {
	if err := d.take(dir); err != nil {
		return err
	}
	defer d.give()
	return d.FS.SyncDir(dir)
}

type descriptorShortFile struct {
	vfs.File
	fs   *descriptorShortFS
	once sync.Once
}

func (f *descriptorShortFile) Close() error {
	f.once.Do(f.fs.give)
	return f.File.Close()
}

// TestPartitionDescriptorShortageAtItsStateFiles: a partition's leader
// epoch checkpoint, its producer snapshots and the high-watermark
// checkpoint were written straight to the file system, while the log's
// own files shed an idle segment file and try again when an open finds
// no descriptor. Out of descriptors, a new epoch's first append failed
// (its checkpoint is written before the records), and so did the
// manager's checkpoint, with idle files there to close.
func TestPartitionDescriptorShortageAtItsStateFiles(t *testing.T) {
	f := newFixture(t)
	dfs := &descriptorShortFS{FS: f.fs}
	f.open(dfs)
	idle := make([][]int32, 6)
	for i := range idle {
		idle[i] = []int32{testNode}
	}
	f.createTopic("idle", 1, nil, idle...)
	for i := range idle {
		_, err := f.partition("idle", int32(i)).Append(f.batch(plain(1)))
		noErr(t, err)
	}
	f.createTopic("short", 2, nil, []int32{testNode})
	p := f.partition("short", 0)
	_, err := p.Append(f.batch(idem(7, 0, 0, 2)))
	noErr(t, err)
	before := p.LeaderEpoch()

	dfs.setShort(true)
	f.apply(&metadata.PartitionChange{TopicID: uuid(2), Partition: 0, Leader: testNode})
	noErr(t, f.mgr.Refresh())
	require(t, p.LeaderEpoch() > before, "leader epoch %d, want past %d", p.LeaderEpoch(), before)
	_, err = p.Append(f.batch(plain(1)))
	noErr(t, err)
	noErr(t, f.mgr.Checkpoint())
	require(t, dfs.emfile > 0, "no open ran out of descriptors: the test tests nothing")
	dfs.setShort(false)

	data, err := vfs.ReadFile(dfs, p.path(leaderEpochCheckpointFile), maxStateFileBytes)
	noErr(t, err)
	require(t, strings.Contains(string(data), fmt.Sprintf("\n%d ", p.LeaderEpoch())), "the new epoch is not in the checkpoint:\n%s", data)
	offsets, err := listSnapshots(dfs, p.log.Dir())
	noErr(t, err)
	require(t, len(offsets) > 0 && offsets[0] == p.log.LogEndOffset(), "snapshots %v, want one at the log end %d", offsets, p.log.LogEndOffset())
}
