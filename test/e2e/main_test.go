package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// readyPrefix starts the one stderr line `sluice serve` prints once it
// accepts connections; the rest of the line is the real HOST:PORT.
const readyPrefix = "sluice: accepting Kafka clients on "

const (
	// startTimeout bounds how long a broker may take to print its ready
	// line; a broker that takes longer is killed and the test fails.
	startTimeout = 30 * time.Second
	// stopTimeout bounds a clean shutdown after SIGTERM before SIGKILL.
	stopTimeout = 20 * time.Second
	// testTimeout bounds each test's client calls.
	testTimeout = 90 * time.Second
)

var (
	// sluiceBin is the binary under test, built once by TestMain.
	sluiceBin string
	// repoRoot is the module root, two levels above this package.
	repoRoot string

	// live holds every child broker not yet reaped, so TestMain's exit
	// path can kill whatever a failed or panicking test left behind.
	liveMu sync.Mutex
	live   = map[*exec.Cmd]struct{}{}
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = root
	tmp, err := os.MkdirTemp("", "sluice-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	defer killAll()

	sluiceBin = os.Getenv("SLUICE_BIN")
	if sluiceBin == "" {
		sluiceBin = filepath.Join(tmp, "sluice")
		if err := buildSluice(sluiceBin); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: building sluice:", err)
			return 1
		}
	}
	return m.Run()
}

// buildSluice compiles ./cmd/sluice once for all tests; SLUICE_E2E_RACE=1
// builds it with the race detector.
func buildSluice(out string) error {
	args := []string{"build", "-o", out}
	if os.Getenv("SLUICE_E2E_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/sluice")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repoRoot
	cmd.Stdout = os.Stderr
	cmd.Stderr = os.Stderr
	return cmd.Run()
}

func killAll() {
	liveMu.Lock()
	defer liveMu.Unlock()
	for cmd := range live {
		_ = cmd.Process.Kill()
	}
}

// broker is one `sluice serve` child process. It can be killed and
// restarted on the same data directory; each start gets a fresh port.
type broker struct {
	t       testing.TB
	dataDir string
	args    []string // extra arguments after --data-dir/--listen
	env     []string // extra environment, KEY=VALUE

	mu   sync.Mutex
	proc *process // nil when not running
	addr string
	logs lockedBuffer // stderr of every run, in order
}

// process is one run of the binary. waitErr is written before done is
// closed, so it may be read by anyone who has seen done closed.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
}

type brokerOpt func(*broker)

// withSet adds `--set key=value` for each pair.
func withSet(kv ...string) brokerOpt {
	return func(b *broker) {
		for _, s := range kv {
			b.args = append(b.args, "--set", s)
		}
	}
}

func withArgs(args ...string) brokerOpt {
	return func(b *broker) { b.args = append(b.args, args...) }
}

func withEnv(kv ...string) brokerOpt {
	return func(b *broker) { b.env = append(b.env, kv...) }
}

// startBroker starts a broker on 127.0.0.1:0 with a fresh data directory
// and stops it (SIGTERM, then SIGKILL) when the test ends, however it ends.
// A broker stopped by SIGTERM must exit 0 (the contract of `sluice serve`).
func startBroker(t testing.TB, opts ...brokerOpt) *broker {
	t.Helper()
	b := &broker{t: t, dataDir: t.TempDir()}
	for _, o := range opts {
		o(b)
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("broker stderr (tail):\n%s", tail(b.logs.String(), 6000))
		}
	})
	if err := b.start(); err != nil {
		t.Fatalf("start broker: %v", err)
	}
	return b
}

// launch execs the binary with args and registers it for TestMain's
// final kill. Its stderr goes to logs; ready receives the address of the
// first ready line.
func launch(args, env []string, logs *lockedBuffer, ready chan<- string) (*process, error) {
	cmd := exec.Command(sluiceBin, args...)
	cmd.Env = append(hermeticEnv(), env...)
	// Kill the child if the test binary dies without running cleanups
	// (a -timeout panic, a SIGKILL). Pdeathsig belongs to the thread that
	// forked, so keep this goroutine on its thread for the fork.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", sluiceBin, err)
	}
	liveMu.Lock()
	live[cmd] = struct{}{}
	liveMu.Unlock()

	p := &process{cmd: cmd, done: make(chan struct{})}
	copied := make(chan struct{})
	go scanStderr(pipe, logs, ready, copied)
	go func() {
		<-copied // Wait closes the pipe: read it to the end first
		p.waitErr = cmd.Wait()
		liveMu.Lock()
		delete(live, cmd)
		liveMu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// hermeticEnv is this process's environment without SLUICE_* variables:
// the broker reads those as configuration, and a test states its own.
func hermeticEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			out = append(out, kv)
		}
	}
	return out
}

// killGroup SIGKILLs the child's process group (it is its own leader).
func (p *process) killGroup() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// start runs the binary and waits for its ready line.
func (b *broker) start() error {
	b.mu.Lock()
	running := b.proc != nil
	b.mu.Unlock()
	if running {
		return errors.New("broker already running")
	}
	args := append([]string{"serve", "--data-dir", b.dataDir, "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}, b.args...)
	ready := make(chan string, 1)
	p, err := launch(args, b.env, &b.logs, ready)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.proc, b.addr = p, ""
	b.mu.Unlock()

	select {
	case addr := <-ready:
		b.mu.Lock()
		b.addr = addr
		b.mu.Unlock()
		return nil
	case <-p.done:
		b.detach()
		return fmt.Errorf("sluice serve exited before accepting clients (%v); stderr:\n%s", p.waitErr, tail(b.logs.String(), 6000))
	case <-time.After(startTimeout):
		p.killGroup()
		<-p.done
		b.detach()
		return fmt.Errorf("no %q line within %v; stderr:\n%s", readyPrefix, startTimeout, tail(b.logs.String(), 6000))
	}
}

// scanStderr copies the child's stderr into buf and reports the address
// of the first ready line. It drains to EOF so the child never blocks on a
// full pipe.
func scanStderr(r io.Reader, buf *lockedBuffer, ready chan<- string, copied chan<- struct{}) {
	defer close(copied)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		buf.WriteString(line + "\n")
		if !sent && strings.HasPrefix(line, readyPrefix) {
			ready <- strings.TrimSpace(strings.TrimPrefix(line, readyPrefix))
			sent = true
		}
	}
	_, _ = io.Copy(buf, r)
}

// Addr is the HOST:PORT the running child printed.
func (b *broker) Addr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.addr
}

// detach forgets the running process and returns it (nil if none).
func (b *broker) detach() *process {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.proc
	b.proc = nil
	return p
}

// stop sends SIGTERM and waits for a clean exit; after stopTimeout it
// kills the process group. It reports a non-zero exit or a forced kill.
func (b *broker) stop() error {
	p := b.detach()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("exit after SIGTERM: %v", p.waitErr)
		}
		return nil
	case <-time.After(stopTimeout):
		p.killGroup()
		<-p.done
		return fmt.Errorf("no exit within %v of SIGTERM; killed", stopTimeout)
	}
}

// kill9 kills the broker with SIGKILL (a crash) and reaps it.
func (b *broker) kill9() {
	p := b.detach()
	if p == nil {
		return
	}
	p.killGroup()
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		b.t.Errorf("broker pid %d not reaped %v after SIGKILL", p.cmd.Process.Pid, stopTimeout)
	}
}

// restart starts the broker again on the same data directory.
func (b *broker) restart() {
	b.t.Helper()
	if err := b.start(); err != nil {
		b.t.Fatalf("restart broker: %v", err)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) WriteString(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.WriteString(s)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// newClient returns a franz-go client for addr, closed at test end.
func newClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("sluice-e2e"),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(20 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func newAdmin(t testing.TB, addr string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t, addr))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic with the given partitions and configs and
// fails the test on any error.
func createTopic(t testing.TB, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopics(testCtx(t), partitions, 1, configs, topic)
	if err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
	r, err := resp.On(topic, nil)
	if err != nil || r.Err != nil {
		t.Fatalf("CreateTopics %s: %v %v (%s)", topic, err, r.Err, r.ErrMessage)
	}
}

func strp(s string) *string { return &s }

// eventually polls cond every interval until it returns nil or the bound
// passes, then fails with the last error.
func eventually(t testing.TB, bound time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, bound, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
