//go:build linux

package vfs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// VolumeUsage reads statfs(2) for the volume holding dir.
func (osFS) VolumeUsage(dir string) (VolumeUsage, error) {
	var st unix.Statfs_t
	for {
		err := unix.Statfs(dir, &st)
		if err == nil {
			break
		}
		// FUSE and network file systems can be interrupted by a signal;
		// package os retries its own calls the same way.
		if !errors.Is(err, unix.EINTR) {
			return VolumeUsage{}, &os.PathError{Op: "statfs", Path: dir, Err: err}
		}
	}
	// Block counts are in fragment-size units; f_frsize is 0 on some old
	// kernels' file systems, where f_bsize is the unit.
	unit := uint64(st.Frsize)
	if unit == 0 {
		unit = uint64(st.Bsize)
	}
	return VolumeUsage{TotalBytes: volumeBytes(st.Blocks, unit), UsableBytes: volumeBytes(st.Bavail, unit)}, nil
}
