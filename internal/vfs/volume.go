package vfs

import (
	"errors"
	"math"
	"math/bits"
)

// VolumeUsage is the capacity of the file system a directory is on, as
// DescribeLogDirs v4 reports it for a log directory (KIP-827).
type VolumeUsage struct {
	// TotalBytes is the volume's size.
	TotalBytes int64
	// UsableBytes is what an unprivileged writer can still use: blocks
	// reserved for root are not counted, since the broker cannot rely on
	// them (statfs's f_bavail, as Java's FileStore.getUsableSpace).
	UsableBytes int64
}

// VolumeStater is implemented by file systems that know the size of the
// volume holding a directory. It is optional: an in-memory FS has no volume,
// and callers report the sizes as unknown.
type VolumeStater interface {
	VolumeUsage(dir string) (VolumeUsage, error)
}

// Volume returns the usage of the volume holding dir, or an error wrapping
// errors.ErrUnsupported when fsys cannot tell.
func Volume(fsys FS, dir string) (VolumeUsage, error) {
	vs, ok := fsys.(VolumeStater)
	if !ok {
		return VolumeUsage{}, errors.ErrUnsupported
	}
	return vs.VolumeUsage(dir)
}

// VolumeUsage passes through to the wrapped FS: injected faults are about
// reads, writes and syncs, and a test of a full disk injects those.
func (e *ErrorFS) VolumeUsage(dir string) (VolumeUsage, error) {
	return Volume(e.inner, dir)
}

// volumeBytes multiplies blocks by the block size, saturating at the
// largest int64 as Kafka does for volumes too large for a Java long.
func volumeBytes(blocks, unit uint64) int64 {
	hi, lo := bits.Mul64(blocks, unit)
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo)
}
