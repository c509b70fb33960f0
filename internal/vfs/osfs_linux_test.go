//go:build linux

package vfs

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"testing"
)

// fakeDisk stands in for the descriptor so short writes can be forced.
type fakeDisk struct {
	data      []byte
	maxWrite  int64 // pwritev writes at most this many bytes per call
	maxIovecs int   // largest chunk pwritev was handed
	failAfter int64 // pwritev fails with ENOSPC once data reaches this size; 0 = never
}

func (d *fakeDisk) pwritev(chunk [][]byte, off int64) (int64, error) {
	d.maxIovecs = max(d.maxIovecs, len(chunk))
	if d.failAfter > 0 && int64(len(d.data)) >= d.failAfter {
		return 0, syscall.ENOSPC
	}
	var n int64
	for _, b := range chunk {
		b = b[:min(int64(len(b)), d.maxWrite-n)]
		d.writeAt(b, off+n)
		n += int64(len(b))
	}
	return n, nil
}

func (d *fakeDisk) writeAt(b []byte, off int64) (int, error) {
	d.data = applyOp(d.data, memOp{off: off, data: b})
	return len(b), nil
}

func TestOSFSWritevChunkedShortWrites(t *testing.T) {
	var bufs [][]byte
	var want []byte
	for i := range 3000 {
		b := []byte(fmt.Sprintf("[%d]", i))
		if i%11 == 0 {
			b = nil
		}
		bufs = append(bufs, b)
		want = append(want, b...)
	}
	for _, maxWrite := range []int64{1, 7, 1000, 1 << 30} {
		disk := &fakeDisk{maxWrite: maxWrite}
		n, err := writevChunked(bufs, 0, disk.pwritev, disk.writeAt)
		must(t, err)
		if n != int64(len(want)) || !bytes.Equal(disk.data, want) {
			t.Fatalf("maxWrite %d: wrote %d bytes, content ok %v", maxWrite, n, bytes.Equal(disk.data, want))
		}
		if disk.maxIovecs > iovMax {
			t.Fatalf("pwritev got %d buffers, above IOV_MAX", disk.maxIovecs)
		}
	}
}

func TestOSFSWritevChunkedError(t *testing.T) {
	disk := &fakeDisk{maxWrite: 4, failAfter: 6}
	n, err := writevChunked([][]byte{[]byte("abcdef"), []byte("ghij")}, 0, disk.pwritev, disk.writeAt)
	if !errors.Is(err, syscall.ENOSPC) || n != int64(len(disk.data)) {
		t.Fatalf("got %d, %v with %d bytes on disk", n, err, len(disk.data))
	}
}

func TestOSFSKernelAtLeast(t *testing.T) {
	for release, want := range map[string]bool{
		"6.18.0-1-amd64": true, "5.8.0": true, "5.10": true, "5.7.19": false,
		"4.19.0-25-amd64": false, "5.8-rc1": true, "10.0.0": true, "garbage": false, "": false,
	} {
		if got := kernelAtLeast(release, 5, 8); got != want {
			t.Errorf("kernelAtLeast(%q, 5, 8) = %v, want %v", release, got, want)
		}
	}
}

// TestOSFSSyncfsKernel: syncfs is used only on kernels whose syncfs
// returns what an fdatasync of each file would. The common 5.10 (Debian
// 11), 5.14 (RHEL 9) and 5.15 (Ubuntu 22.04) kernels report write-back
// errors from syncfs but drop ext4's, XFS's and btrfs's ->sync_fs errors
// (a failed journal commit or disk cache flush): syncfs returns 0 there
// while fdatasync fails.
func TestOSFSSyncfsKernel(t *testing.T) {
	for release, want := range map[string]bool{
		"4.19.0-25-amd64": false, "5.7.19": false, "5.8.0": false, "5.10.0-28-amd64": false,
		"5.14.0-362.8.1.el9_3.x86_64": false, "5.15.0-91-generic": false, "5.16.20": false,
		"5.17.0": true, "5.17-rc1": true, "6.1.0-18-amd64": true, "6.18.0-1-amd64": true, "garbage": false,
	} {
		if got := syncfsKernelOK(release); got != want {
			t.Errorf("syncfsKernelOK(%q) = %v, want %v", release, got, want)
		}
	}
}

// TestOSFSSyncfsExt2Refused: ext2 shares ext4's magic number, but the
// ext2 driver's syncfs writes back without flushing the disk's write
// cache, which its fsync does; an ext2 mount must fall back to fdatasync.
func TestOSFSSyncfsExt2Refused(t *testing.T) {
	const info = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n" +
		"29 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		"30 29 8:2 / /data rw,relatime shared:2 master:3 - ext2 /dev/sda2 rw\n" +
		"31 29 8:3 / /old rw - ext3 /dev/sda3 rw,data=ordered\n"
	for _, c := range []struct {
		major, minor uint32
		fstype       string
		flushes      bool
	}{{8, 1, "ext4", true}, {8, 2, "ext2", false}, {8, 3, "ext3", true}, {8, 4, "", false}} {
		got, ok := mountFSType([]byte(info), c.major, c.minor)
		if got != c.fstype || ok != (c.fstype != "") {
			t.Errorf("mountFSType(%d:%d) = %q, %v; want %q", c.major, c.minor, got, ok, c.fstype)
		}
		if extDriverFlushes(got) != c.flushes {
			t.Errorf("extDriverFlushes(%q) = %v, want %v", got, !c.flushes, c.flushes)
		}
	}
}

// TestOSFSSyncerRefusesUntrustedFileSystem: syncfs is used only on file
// systems known to make it durable; procfs is not one of them.
func TestOSFSSyncerRefusesUntrustedFileSystem(t *testing.T) {
	s, err := OS().OpenFileSystemSyncer("/proc")
	if err == nil {
		s.Close()
		t.Fatal("a syncfs handle on procfs was accepted")
	}
	if !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("OpenFileSystemSyncer(/proc): %v, want ErrUnsupported", err)
	}
}

// TestOSFSStartWriteback: the hint takes a range of an open file and
// changes nothing a reader sees; on a closed file it reports the error
// (its caller ignores it) instead of reaching a reused descriptor.
func TestOSFSStartWriteback(t *testing.T) {
	f, err := OS().Create(t.TempDir() + "/w")
	must(t, err)
	data := bytes.Repeat([]byte("sluice"), 4096)
	_, err = f.WriteAt(data, 0)
	must(t, err)
	if _, ok := f.(WritebackStarter); !ok {
		t.Fatalf("OS file %T does not start write-back", f)
	}
	must(t, StartWriteback(f, 0, int64(len(data))))
	must(t, StartWriteback(f, 4096, 1<<30)) // past the end: nothing to write
	got := make([]byte, len(data))
	_, err = f.ReadAt(got, 0)
	must(t, err)
	if !bytes.Equal(got, data) {
		t.Fatal("contents changed by the write-back hint")
	}
	must(t, f.Close())
	if err := StartWriteback(f, 0, 4096); err == nil {
		t.Fatal("StartWriteback on a closed file succeeded")
	}
}

// TestMemFSStartWritebackIsNoOp: files that cannot take the hint ignore
// it, so callers need no check of their own.
func TestMemFSStartWritebackIsNoOp(t *testing.T) {
	mem := NewMem()
	f, err := mem.Create("/m")
	must(t, err)
	if _, ok := f.(WritebackStarter); ok {
		t.Fatalf("MemFS file %T claims to start write-back", f)
	}
	must(t, StartWriteback(f, 0, 4096))
	must(t, f.Close())
}

// TestOSFSStartWritebackAfterCloseMissesTheReusedDescriptor: the journal's
// write-back goroutine may hint a file that a log closed meanwhile, and
// the kernel hands its descriptor number to the next file opened. The
// hint must fail on the closed file, not reach the one now holding the
// number; and hints racing a Close must not race it (-race).
func TestOSFSStartWritebackAfterCloseMissesTheReusedDescriptor(t *testing.T) {
	dir := t.TempDir()
	for i := range 20 {
		a, err := OS().Create(fmt.Sprintf("%s/a%d", dir, i))
		must(t, err)
		_, err = a.WriteAt(bytes.Repeat([]byte{'a'}, 8192), 0)
		must(t, err)
		must(t, StartWriteback(a, 0, 4096))
		hinted := make(chan error, 1)
		go func() {
			var err error
			for err == nil {
				err = StartWriteback(a, 0, 8192)
			}
			hinted <- err
		}()
		must(t, a.Close())
		b, err := OS().Create(fmt.Sprintf("%s/b%d", dir, i)) // the lowest free number: a's
		must(t, err)
		if err := StartWriteback(a, 0, 8192); err == nil {
			t.Fatal("a hint on a closed file, its descriptor reused, succeeded")
		}
		<-hinted // ends with the first hint refused
		must(t, b.Close())
	}
}
