// Command scale measures what Sluice costs at scale on one node, against a
// real `sluice serve` process: many idle partitions (start-up after a clean
// stop and after kill -9, idle CPU, resident memory, open files, Metadata
// and /metrics latency) and big logs (recovery time and bytes read against
// data size). Every step has a bound; the node is killed on exit.
//
// Usage (from bench/):
//
//	go run ./scale partitions --sluice ../sluice --topics 100 --partitions 100
//	go run ./scale partitions --sluice ../sluice --nofile 1024
//	go run ./scale biglog --sluice ../sluice --gib 1,5,20
//	go run ./scale spread --sluice ../sluice --layouts 1x8,100x100
//
// Figures are printed as a table, one "name value unit" row each; the load
// average is printed first, since the machine may be shared.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: scale partitions|biglog|spread [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "partitions":
		err = runPartitions(os.Args[2:])
	case "biglog":
		err = runBigLog(os.Args[2:])
	case "spread":
		err = runSpread(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q: want partitions, biglog or spread", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// common are the flags both modes share.
type common struct {
	sluice  string
	dir     string
	nofile  int
	sets    stringList
	timeout time.Duration
	keep    bool
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.sluice, "sluice", "sluice", "path of the sluice binary")
	fs.StringVar(&c.dir, "dir", "", "data directory (default: a new temporary one, removed at the end)")
	fs.IntVar(&c.nofile, "nofile", 0, "run the node under prlimit --nofile=N (0: inherit)")
	fs.Var(&c.sets, "set", "extra --set key=value for sluice serve (repeatable)")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "bound on the whole run")
	fs.BoolVar(&c.keep, "keep", false, "keep the data directory")
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// node is one `sluice serve` process.
type node struct {
	cmd     *exec.Cmd
	addr    string
	http    string
	started time.Time
	ready   time.Time // "accepting Kafka clients" printed
	// sessionWait is when the node said it waits for its previous broker
	// session to expire (after kill -9): its logs are open by then.
	sessionWait time.Time
	logPath     string
	done        chan struct{}
}

func (c *common) start(ctx context.Context, dir, logPath string) (*node, error) {
	args := []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}
	for _, s := range c.sets {
		args = append(args, "--set", s)
	}
	name := c.sluice
	if c.nofile > 0 {
		args = append([]string{fmt.Sprintf("--nofile=%d:%d", c.nofile, c.nofile), "--", c.sluice}, args...)
		name = "prlimit"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "SLUICE_BROKERS=")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	n := &node{cmd: cmd, logPath: logPath, done: make(chan struct{}), started: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(logFile, sc.Text())
			select {
			case lines <- sc.Text():
			default:
			}
		}
		logFile.Close()
	}()
	go func() { cmd.Wait(); close(n.done) }()
	for n.addr == "" {
		select {
		case <-ctx.Done():
			n.kill()
			return nil, fmt.Errorf("node did not start: %w (log: %s)", ctx.Err(), logPath)
		case line, ok := <-lines:
			if !ok {
				return nil, fmt.Errorf("node exited before serving (log: %s)", logPath)
			}
			if a, ok := strings.CutPrefix(line, "sluice: serving HTTP (console, metrics, health) on http://"); ok {
				n.http = strings.TrimSuffix(a, "/")
			}
			if strings.Contains(line, "waiting for the previous run's broker session to expire") {
				n.sessionWait = time.Now()
			}
			if a, ok := strings.CutPrefix(line, "sluice: accepting Kafka clients on "); ok {
				n.addr, n.ready = a, time.Now()
			}
		}
	}
	go func() {
		for range lines {
		}
	}()
	return n, nil
}

func (n *node) pid() int { return n.cmd.Process.Pid }

// servePID is the sluice process itself, below prlimit if it wraps it
// (prlimit execs, so it is the same pid).
func (n *node) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

func (n *node) stop(timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return time.Since(t0), nil
	case <-time.After(timeout):
		n.kill()
		return time.Since(t0), errors.New("clean stop timed out; killed")
	}
}

// procStat returns the process's CPU time (user+system) and resident bytes.
func procStat(pid int) (cpu time.Duration, rss int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// Fields after the parenthesized command name.
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	pages, _ := strconv.ParseInt(fields[21], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, pages * int64(os.Getpagesize()), nil
}

func openFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// procIO returns the bytes the process read through read-like syscalls
// (rchar, page cache hits included) and from the block device.
func procIO(pid int) (rchar, readBytes int64) {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		n, _ := strconv.ParseInt(v, 10, 64)
		switch k {
		case "rchar":
			rchar = n
		case "read_bytes":
			readBytes = n
		}
	}
	return rchar, readBytes
}

// result rows, printed at the end and as they come.
type results struct{ rows [][3]string }

func (r *results) add(name string, value any, unit string) {
	var v string
	switch x := value.(type) {
	case time.Duration:
		v = strconv.FormatFloat(x.Seconds()*1000, 'f', 1, 64)
		if unit == "" {
			unit = "ms"
		}
	case float64:
		v = strconv.FormatFloat(x, 'f', 2, 64)
	default:
		v = fmt.Sprint(x)
	}
	r.rows = append(r.rows, [3]string{name, v, unit})
	fmt.Fprintf(os.Stderr, "scale: %-44s %12s %s\n", name, v, unit)
}

func (r *results) print() {
	fmt.Println(loadAverage())
	for _, row := range r.rows {
		fmt.Printf("%-44s %12s %s\n", row[0], row[1], row[2])
	}
}

func loadAverage() string {
	data, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "load average: unknown"
	}
	return "load average: " + strings.Join(f[:3], " ")
}

func newClient(addr string, opts ...kgo.Opt) (*kgo.Client, error) {
	return kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RequestRetries(20),
		kgo.RetryTimeout(60 * time.Second)}, opts...)...)
}

// waitAllPartitions polls ListOffsets for every partition until each answers
// without error, the moment a client can use all of them.
func waitAllPartitions(ctx context.Context, adm *kadm.Client, topics []string, want int) error {
	for {
		offsets, err := adm.ListEndOffsets(ctx, topics...)
		if err == nil {
			ok := 0
			offsets.Each(func(o kadm.ListedOffset) {
				if o.Err == nil {
					ok++
				}
			})
			if ok == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("partitions not all ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// timeRequests issues a request n times and returns the median and max.
func timeRequests(n int, do func() error) (median, maxD time.Duration, err error) {
	var ds []time.Duration
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := do(); err != nil {
			return 0, 0, err
		}
		ds = append(ds, time.Since(t0))
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2], ds[len(ds)-1], nil
}

func scrape(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	return int(n), err
}

func tempDir(c *common, prefix string) (string, func(), error) {
	if c.dir != "" {
		return c.dir, func() {}, os.MkdirAll(c.dir, 0o755)
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", nil, err
	}
	return dir, func() {
		if !c.keep {
			os.RemoveAll(dir)
		}
	}, nil
}

func dataSize(dir string) int64 {
	var total int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			total += info.Size()
		}
		return nil
	})
	return total
}

// metadataAll asks for every topic with a raw v12 request, as a client's
// metadata refresh does.
func metadataAll(ctx context.Context, cl *kgo.Client) func() error {
	return func() error {
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = nil
		_, err := req.RequestWith(ctx, cl)
		return err
	}
}

func scrapeToFile(url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale: profile:", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale: profile:", err)
		return
	}
	defer f.Close()
	io.Copy(f, resp.Body)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
