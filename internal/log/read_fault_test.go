package log

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/vfs"
)

// TestLogReadOfASealedSegmentThatCannotOpenFails: a read takes a
// reference to the sealed segment it chose after dropping the log's lock,
// and looks again if the segment went away meanwhile (retention, a
// truncation). Every failure to open it was taken for that, so a .log
// that could not be opened (EIO, or no descriptor with nothing idle to
// close) made Read loop for ever on one core instead of failing the
// fetch.
func TestLogReadOfASealedSegmentThatCannotOpenFails(t *testing.T) {
	cfg := DefaultConfig()
	cfg.SegmentBytes = 600
	efs := vfs.NewErrorFS(vfs.NewMem())
	const dir = "/data/t-0"
	l, err := Open(efs, dir, Options{Config: cfg, Logger: quietLogger})
	noErr(t, err)
	for i := range 3 {
		_, err := l.Append(testBatch(t, fmt.Sprint("sealed/", i), 1, 300, 1), AppendOptions{LeaderEpoch: -1})
		noErr(t, err)
	}
	end := l.LogEndOffset()
	noErr(t, l.Close())
	l, err = Open(efs, dir, Options{Config: cfg, Logger: quietLogger, RecoveryPoint: end, CleanShutdown: true})
	noErr(t, err)
	defer l.Close()
	require(t, l.NumSegments() > 1, "%d segments, want a sealed one", l.NumSegments())

	efs.Inject(vfs.Rule{Op: vfs.OpOpen, PathContains: segmentFileName(0, logSuffix), Count: -1})
	read := make(chan error, 1)
	go func() {
		_, err := l.Read(0, ReadOptions{MaxBytes: 1 << 20, MaxOffset: NoMaxOffset})
		read <- err
	}()
	select {
	case err := <-read:
		require(t, errors.Is(err, vfs.ErrInjected), "read of a sealed segment that cannot open: %v, want the open's error", err)
	case <-time.After(10 * time.Second):
		t.Fatal("a read of a sealed segment that cannot open has not returned after 10 s")
	}
	efs.Clear()
	_, err = l.Read(0, ReadOptions{MaxBytes: 1 << 20, MaxOffset: NoMaxOffset})
	noErr(t, err)
}
