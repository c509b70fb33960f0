//go:build linux

package vfs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncfsTrusted lists the file systems whose syncfs(2) is used: ones whose
// sync_fs commits the journal (or transaction) and flushes the disk cache
// after writing back every dirty page, so that syncfs is as durable as an
// fdatasync of each file. Others (network and FUSE file systems, overlay
// stacks) may do less or report less, and get fdatasync per file.
var syncfsTrusted = map[int64]string{
	unix.EXT4_SUPER_MAGIC:  "ext4", // also ext2 and ext3, same magic; ext2 is refused (extDriverFlushes)
	unix.XFS_SUPER_MAGIC:   "xfs",
	unix.BTRFS_SUPER_MAGIC: "btrfs",
	// Nothing on tmpfs is durable, by fdatasync or by syncfs; listed so
	// that tests on a tmpfs /tmp run the same code as a broker on disk.
	unix.TMPFS_MAGIC: "tmpfs",
}

// syncfsReportsErrors is whether this kernel's syncfs reports every
// failure an fdatasync of each file would (syncfsKernelOK), with the
// release it read.
var syncfsReportsErrors = sync.OnceValues(func() (bool, string) {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return false, "uname: " + err.Error()
	}
	release := unix.ByteSliceToString(uts.Release[:])
	return syncfsKernelOK(release), release
})

// syncfsKernelOK says whether a kernel release returns from syncfs the
// errors an fdatasync returns. Before 5.8 (commit 735e4ae5ba28, errseq_t
// on the superblock) syncfs returned 0 when pages failed to reach the
// disk. Before 5.17 (commit 5679897eb104) sync_filesystem dropped the
// file system's own ->sync_fs result: a failed journal commit or log force
// (which holds the extents and sizes that make appended bytes readable
// after a crash) or a failed disk cache flush, all of which an fdatasync
// reports, left syncfs returning 0, and an acknowledgement could follow a
// lost write. Stable trees that took the fix later (5.15.y, 5.10.y) are
// refused too: the release string does not say which have it.
func syncfsKernelOK(release string) bool { return kernelAtLeast(release, 5, 17) }

// kernelAtLeast parses the "major.minor" of a kernel release string
// ("6.18.0-1-amd64"); an unreadable one counts as too old.
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	maj, err1 := strconv.Atoi(parts[0])
	minorDigits, _, _ := strings.Cut(parts[1], "-") // "8-rc1" when there is no patch level
	mnr, err2 := strconv.Atoi(minorDigits)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || (maj == major && mnr >= minor)
}

func openFileSystemSyncer(dir string) (FileSystemSyncer, error) {
	if ok, release := syncfsReportsErrors(); !ok {
		return nil, fmt.Errorf("vfs: syncfs of %s: kernel %s does not report all sync errors from syncfs (needs 5.17): %w", dir, release, errors.ErrUnsupported)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	s, err := newOSSyncer(d)
	if err != nil {
		d.Close()
		return nil, err
	}
	return s, nil
}

func newOSSyncer(d *os.File) (*osSyncer, error) {
	raw, err := d.SyscallConn()
	if err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	var statErr error
	if err := raw.Control(func(fd uintptr) { statErr = unix.Fstatfs(int(fd), &st) }); err != nil {
		return nil, err
	}
	if statErr != nil {
		return nil, &os.PathError{Op: "fstatfs", Path: d.Name(), Err: statErr}
	}
	if _, ok := syncfsTrusted[int64(st.Type)]; !ok {
		return nil, fmt.Errorf("vfs: syncfs of %s: file system type %#x not known to make syncfs durable: %w", d.Name(), st.Type, errors.ErrUnsupported)
	}
	if st.Type == unix.EXT4_SUPER_MAGIC {
		if err := checkExtMount(d.Name(), raw); err != nil {
			return nil, err
		}
	}
	s := &osSyncer{dir: d, raw: raw}
	s.syncFn = s.rawSyncfs
	return s, nil
}

// checkExtMount refuses syncfs on an ext2 mount. ext2, ext3 and ext4
// share a magic number, and ext2's sync_fs writes the superblock without
// flushing the disk's volatile write cache, which its fsync does: a
// syncfs there could return before appended bytes are on stable media.
// The mount's type is read from /proc/self/mountinfo by the device number;
// when it cannot be found syncfs is refused as well.
func checkExtMount(dir string, raw syscall.RawConn) error {
	var st unix.Stat_t
	var statErr error
	if err := raw.Control(func(fd uintptr) { statErr = unix.Fstat(int(fd), &st) }); err != nil {
		return err
	}
	if statErr != nil {
		return &os.PathError{Op: "fstat", Path: dir, Err: statErr}
	}
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("vfs: syncfs of %s: cannot tell ext2 from ext4: %w (%w)", dir, errors.ErrUnsupported, err)
	}
	fstype, ok := mountFSType(info, unix.Major(st.Dev), unix.Minor(st.Dev))
	if !ok || !extDriverFlushes(fstype) {
		return fmt.Errorf("vfs: syncfs of %s: mount type %q does not flush the disk cache in syncfs: %w", dir, fstype, errors.ErrUnsupported)
	}
	return nil
}

// extDriverFlushes says whether a mount of this type (an ext magic file
// system) flushes the disk cache in syncfs: ext3 and ext4 mounts run the
// ext4 driver, whose sync_fs does; an ext2 mount may run the ext2 driver,
// whose sync_fs does not.
func extDriverFlushes(fstype string) bool { return fstype == "ext4" || fstype == "ext3" }

// mountFSType finds the file system type of the mount of device
// major:minor in /proc/self/mountinfo ("36 35 98:0 /a /b rw - ext4 /dev/x
// rw": the third field is the device, the one after the "-" separator the
// type).
func mountFSType(mountinfo []byte, major, minor uint32) (string, bool) {
	dev := strconv.FormatUint(uint64(major), 10) + ":" + strconv.FormatUint(uint64(minor), 10)
	for line := range strings.SplitSeq(string(mountinfo), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[2] != dev {
			continue
		}
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				return fields[i+1], true
			}
		}
	}
	return "", false
}

// osSyncer holds the directory descriptor whose errseq sample syncfs
// checks. mu serialises syncs, which share err; syncFn is bound once so a
// sync allocates no closure.
type osSyncer struct {
	dir    *os.File
	raw    syscall.RawConn
	mu     sync.Mutex
	err    error
	syncFn func(fd uintptr)
}

func (s *osSyncer) SyncFS() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.raw.Control(s.syncFn)
	if err == nil {
		err = s.err
	}
	if err != nil {
		return &os.PathError{Op: "syncfs", Path: s.dir.Name(), Err: err}
	}
	return nil
}

func (s *osSyncer) rawSyncfs(fd uintptr) {
	for {
		err := unix.Syncfs(int(fd))
		if !errors.Is(err, unix.EINTR) {
			s.err = err
			return
		}
	}
}

func (s *osSyncer) Close() error { return s.dir.Close() }
