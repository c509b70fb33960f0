package vfs

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
)

// TempSuffix ends the temporary file WriteFileAtomic writes before renaming
// it into place; whoever owns a directory removes leftovers with it after a
// crash.
const TempSuffix = ".tmp"

// ErrFileTooLarge: ReadFile refused a file larger than its limit.
var ErrFileTooLarge = errors.New("file larger than allowed")

// WriteFileAtomic replaces path with data so that a crash leaves either the
// old file or the new one, never a mix: write a temporary file, fsync it,
// rename it over path, fsync the directory.
func WriteFileAtomic(fsys FS, path string, data []byte) error {
	tmp := path + TempSuffix
	err := writeAndClose(fsys, tmp, data, true)
	if err == nil {
		err = fsys.Rename(tmp, path)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// WriteFile creates or truncates path and writes data to it, fsyncing it
// before it closes when sync is set. Without sync its bytes are durable
// only once something else syncs them (a FileSystemSyncer), and its name
// only after SyncDir: callers that make many files durable together write
// them this way, then name them as WriteFileAtomic does one.
func WriteFile(fsys FS, path string, data []byte, sync bool) error {
	if err := writeAndClose(fsys, path, data, sync); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func writeAndClose(fsys FS, path string, data []byte, sync bool) error {
	f, err := fsys.Create(path)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, 0)
	if err == nil && sync {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	return err
}

// ReadFile reads a whole file, refusing one larger than limit before
// allocating for it.
func ReadFile(fsys FS, path string, limit int64) ([]byte, error) {
	f, err := fsys.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than %d: %w", path, size, limit, ErrFileTooLarge)
	}
	b := make([]byte, size)
	if n, err := f.ReadAt(b, 0); int64(n) < size {
		if err == nil || errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
