package vfs

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrLocked: another process holds the directory's lock.
var ErrLocked = errors.New("directory in use by another process")

// LockDir takes an exclusive lock on dir/.lock, as Kafka locks each log
// directory, so two processes never write one directory. The lock is an
// flock(2) on an open file: the kernel drops it when the process dies, so a
// crash never leaves a stale lock behind. On file systems other than the
// real one (MemFS in tests) there is no other process, and the lock is
// only the file. Release closes it.
func LockDir(fs FS, dir string) (release func() error, err error) {
	path := dir + "/.lock"
	f, err := fs.OpenReadWrite(path)
	if err != nil {
		if f, err = fs.Create(path); err != nil {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
	if osf, ok := f.(OSFile); ok {
		if err := syscall.Flock(int(osf.OSFile().Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s: %w", dir, ErrLocked)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
	return f.Close, nil
}
