package vfs

import (
	"errors"
	"math"
	"runtime"
	"testing"
)

func TestVolumeUsageOS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("statfs is wired up on Linux only")
	}
	dir := t.TempDir()
	u, err := Volume(OS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.TotalBytes <= 0 || u.UsableBytes < 0 || u.UsableBytes > u.TotalBytes {
		t.Fatalf("usage %+v: want 0 <= usable <= total, total > 0", u)
	}
	// Through ErrorFS too, so a broker under fault injection still reports it.
	if w, err := Volume(NewErrorFS(OS()), dir); err != nil || w.TotalBytes != u.TotalBytes {
		t.Fatalf("through ErrorFS: %+v, %v; want total %d", w, err, u.TotalBytes)
	}
	if _, err := Volume(OS(), dir+"/missing"); err == nil {
		t.Fatal("statfs of a missing directory succeeded")
	}
}

func TestVolumeUsageUnsupported(t *testing.T) {
	if _, err := Volume(NewMem(), "/"); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("MemFS: %v, want errors.ErrUnsupported", err)
	}
	if _, err := Volume(NewErrorFS(NewMem()), "/"); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("ErrorFS over MemFS: %v, want errors.ErrUnsupported", err)
	}
}

func TestVolumeBytesSaturates(t *testing.T) {
	cases := []struct {
		blocks, unit uint64
		want         int64
	}{
		{0, 4096, 0},
		{10, 4096, 40960},
		{math.MaxInt64 / 4096, 4096, math.MaxInt64 / 4096 * 4096},
		{math.MaxInt64/4096 + 1, 4096, math.MaxInt64},
		{math.MaxUint64, 4096, math.MaxInt64},
	}
	for _, c := range cases {
		if got := volumeBytes(c.blocks, c.unit); got != c.want {
			t.Errorf("volumeBytes(%d, %d) = %d, want %d", c.blocks, c.unit, got, c.want)
		}
	}
}
