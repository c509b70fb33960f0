package console

import (
	"bufio"
	"context"
	"errors"
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
)

// readyPrefix starts the stderr line `sluice serve` prints once it serves
// Kafka clients; the rest of the line is its address.
const readyPrefix = "sluice: accepting Kafka clients on "

// httpPrefix starts the line naming the HTTP listener, where `sluice
// serve` mounts the console; it is printed before the ready line.
const httpPrefix = "sluice: serving HTTP (console, metrics, health) on "

// buildSluice compiles ./cmd/sluice into dir.
func buildSluice(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "sluice")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sluice")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/sluice: %v\n%s", err, out)
	}
	return bin
}

// serve starts `sluice serve` on a free loopback port and a fresh data
// directory, and returns its Kafka address and console URL. The process (its own process
// group) is stopped when the test ends, and killed if the test binary dies.
func serve(t *testing.T, bin string) served {
	t.Helper()
	// http.listener on port 0: once the node serves HTTP, a second test
	// run must not fight over the default port. Older nodes warn that
	// the key is unknown and ignore it.
	cmd := exec.Command(bin, "serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--set", "http.listener=127.0.0.1:0")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	runtime.LockOSThread() // Pdeathsig belongs to the forking thread
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	ready := make(chan served, 1)
	done := make(chan error, 1)
	go func() {
		scanLines(stderr, logs, ready)
		done <- cmd.Wait()
	}()
	t.Cleanup(func() { stop(t, cmd, done, logs) })
	select {
	case s := <-ready:
		if s.console == "" {
			t.Fatalf("sluice serve did not say where its console is\n%s", logs)
		}
		return s
	case err := <-done:
		done <- err
		t.Fatalf("sluice serve exited before serving: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice serve did not start within 30 s\n%s", logs)
	}
	return served{}
}

// served are the addresses a started `sluice serve` printed.
type served struct {
	kafka   string // host:port of its Kafka listener
	console string // http://host:port of its HTTP listener, where the console is
}

func scanLines(r io.Reader, logs *lockedBuffer, ready chan<- served) {
	var consoleURL string
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		logs.add(line)
		if u, ok := strings.CutPrefix(line, httpPrefix); ok {
			consoleURL = strings.TrimSuffix(strings.TrimSpace(u), "/")
		}
		if addr, ok := strings.CutPrefix(line, readyPrefix); ok {
			select {
			case ready <- served{kafka: strings.TrimSpace(addr), console: consoleURL}:
			default:
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// stop sends SIGTERM and waits for a clean exit, then SIGKILLs the group.
func stop(t *testing.T, cmd *exec.Cmd, done chan error, logs *lockedBuffer) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Errorf("sluice serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Errorf("sluice serve did not stop within 20 s of SIGTERM\n%s", logs)
	}
}

type lockedBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *lockedBuffer) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.lines = append(b.lines, line)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.lines, "\n")
}
