package vfs

import (
	"errors"
	"testing"
)

func TestOSFSLockDirIsExclusive(t *testing.T) {
	dir := t.TempDir()
	release, err := LockDir(OS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file, so a second open in this
	// process conflicts like another process would.
	if _, err := LockDir(OS(), dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	release, err = LockDir(OS(), dir)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	release()
}
