// Command syncprobe measures what makes a request spread over many
// partitions durable, without a broker: each round appends SIZE bytes to
// each of FILES files (one pwrite each, as a produce spread over FILES
// partitions writes them), then makes the round durable one of two ways:
//
//   - syncfs: one syncfs(2) of the file system, what Sluice does today
//     when many logs owe a sync (internal/log SharedSync);
//   - journal: the same bytes appended to one journal file and that file
//     fdatasynced, the segment files left to write-back; what a
//     write-ahead journal per log directory would do on the ack path.
//
// It prints, per mode, the rounds' MB/s, the CPU per pwrite and the time
// the durability step took per round. Runs alternate between the modes so
// machine noise hits both alike. The files live under -dir (default: a
// temporary directory on the file system of the current directory), and
// are removed at the end.
//
// Usage: go run ./syncprobe [-files 10000] [-size 2048] [-rounds 20] [-runs 2]
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	files := flag.Int("files", 10000, "files written per round (partitions of a request)")
	size := flag.Int("size", 2048, "bytes appended to each file per round")
	rounds := flag.Int("rounds", 20, "rounds per run")
	runs := flag.Int("runs", 2, "runs of each mode, alternating")
	dir := flag.String("dir", ".", "directory to create the probe's files under")
	flag.Parse()
	for run := 1; run <= *runs; run++ {
		for _, mode := range []string{"syncfs", "journal"} {
			r, err := probe(*dir, mode, *files, *size, *rounds)
			if err != nil {
				fmt.Fprintln(os.Stderr, "syncprobe:", err)
				os.Exit(1)
			}
			fmt.Printf("run %d %-8s %7.1f MB/s  write %5.2f µs CPU per pwrite  durability %6.1f ms per round\n",
				run, mode, r.mbps, r.cpuPerWrite, r.syncMsPerRound)
		}
	}
}

type result struct {
	mbps, cpuPerWrite, syncMsPerRound float64
}

func probe(parent, mode string, files, size, rounds int) (result, error) {
	dir, err := os.MkdirTemp(parent, "syncprobe-")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	fds := make([]int, files)
	for i := range fds {
		fd, err := syscall.Open(filepath.Join(dir, fmt.Sprintf("%05d.log", i)), syscall.O_CREAT|syscall.O_RDWR, 0o644)
		if err != nil {
			return result{}, err
		}
		defer syscall.Close(fd)
		fds[i] = fd
	}
	journal, err := syscall.Open(filepath.Join(dir, "journal"), syscall.O_CREAT|syscall.O_RDWR, 0o644)
	if err != nil {
		return result{}, err
	}
	defer syscall.Close(journal)
	syscall.Sync() // start from a clean page cache: nothing of an earlier run to write back
	record := make([]byte, size)
	for i := range record {
		record[i] = byte(i)
	}
	roundBytes := make([]byte, files*size) // the journal's copy of a round
	var writeCPU, syncWall time.Duration
	start := time.Now()
	for r := range rounds {
		c0 := cpuTime()
		for _, fd := range fds {
			if _, err := syscall.Pwrite(fd, record, int64(r*size)); err != nil {
				return result{}, err
			}
		}
		writeCPU += cpuTime() - c0
		s := time.Now()
		if err := durable(mode, fds[0], journal, roundBytes, int64(r*len(roundBytes))); err != nil {
			return result{}, err
		}
		syncWall += time.Since(s)
	}
	elapsed := time.Since(start)
	return result{
		mbps:           float64(files*size*rounds) / elapsed.Seconds() / 1e6,
		cpuPerWrite:    float64(writeCPU.Nanoseconds()) / 1e3 / float64(files*rounds),
		syncMsPerRound: float64(syncWall.Microseconds()) / 1e3 / float64(rounds),
	}, nil
}

// durable makes the round just written durable the way mode says.
func durable(mode string, anyFile, journal int, round []byte, at int64) error {
	if mode == "syncfs" {
		if err := unix.Syncfs(anyFile); err != nil {
			return fmt.Errorf("syncfs: %w", err)
		}
		return nil
	}
	if _, err := syscall.Pwrite(journal, round, at); err != nil {
		return fmt.Errorf("journal write: %w", err)
	}
	return syscall.Fdatasync(journal)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
