package cluster

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readyPrefix starts the stderr line `sluice serve` prints once it accepts
// clients; the rest of the line is the address it listens on.
const readyPrefix = "sluice: accepting Kafka clients on "

const (
	// startTimeout bounds a node's start-up: with three voters a node is
	// ready only once a quorum is up, on two busy cores.
	startTimeout = 60 * time.Second
	// stopTimeout bounds an exit after SIGTERM, and reaping after SIGKILL.
	stopTimeout = 20 * time.Second
)

// node is one `sluice serve` child, restartable on the same data
// directory and ports. Its stderr, across runs, goes to logPath.
type node struct {
	t          testing.TB
	id         int32
	clientAddr string   // where it listens for clients: its ready line
	args       []string // everything after `serve`
	logPath    string

	mu   sync.Mutex
	proc *process // nil when not running
	runs int
}

// process is one run. waitErr is written before done is closed.
type process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	ready   chan string
	waitErr error
}

// launch starts the binary without waiting for it to be ready.
func (n *node) launch() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		return fmt.Errorf("node %d already running", n.id)
	}
	n.runs++
	logFile, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "=== run %d of node %d at %s\n", n.runs, n.id, time.Now().Format(time.StampMilli))
	cmd := exec.Command(sluiceBinary(n.t), append([]string{"serve"}, n.args...)...)
	cmd.Env = hermeticEnv()
	// Pdeathsig: the kernel kills the child if the test binary dies
	// without cleanups; it belongs to the forking thread, hence the lock.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return err
	}
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	if err != nil {
		logFile.Close()
		return fmt.Errorf("exec %s: %w", cmd.Path, err)
	}
	liveMu.Lock()
	live[cmd] = struct{}{}
	liveMu.Unlock()
	p := &process{cmd: cmd, done: make(chan struct{}), ready: make(chan string, 1)}
	n.proc = p
	go func() {
		copyStderr(pipe, logFile, p.ready) // to EOF: Wait closes the pipe
		logFile.Close()
		p.waitErr = cmd.Wait()
		liveMu.Lock()
		delete(live, cmd)
		liveMu.Unlock()
		close(p.done)
	}()
	return nil
}

// copyStderr copies the child's stderr to w and reports the address of the
// first ready line.
func copyStderr(r io.Reader, w io.Writer, ready chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(w, line)
		if !sent && strings.HasPrefix(line, readyPrefix) {
			ready <- strings.TrimSpace(strings.TrimPrefix(line, readyPrefix))
			sent = true
		}
	}
	_, _ = io.Copy(w, r)
}

// hermeticEnv drops SLUICE_* variables: the broker reads them as
// configuration, and the test's own (SLUICE_CLUSTER_SEED) are not for it.
func hermeticEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			out = append(out, kv)
		}
	}
	return out
}

// awaitReady waits for the ready line and checks that it names the
// address this node was given: the process answering is ours.
func (n *node) awaitReady() error {
	p := n.current()
	if p == nil {
		return fmt.Errorf("node %d is not running", n.id)
	}
	select {
	case addr := <-p.ready:
		if addr != n.clientAddr {
			n.Kill()
			return fmt.Errorf("node %d reports %s, want %s", n.id, addr, n.clientAddr)
		}
		return nil
	case <-p.done:
		n.detach()
		return fmt.Errorf("node %d exited before accepting clients: %v", n.id, p.waitErr)
	case <-time.After(startTimeout):
		n.Kill()
		return fmt.Errorf("node %d: no ready line within %v", n.id, startTimeout)
	}
}

func (n *node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

func (n *node) detach() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.proc
	n.proc = nil
	return p
}

// Running says whether the node has a live (possibly paused) process.
func (n *node) Running() bool { return n.current() != nil }

// Kill SIGKILLs the node's process group (a crash) and reaps it.
func (n *node) Kill() {
	p := n.detach()
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		n.t.Errorf("node %d (pid %d) not reaped %v after SIGKILL", n.id, p.cmd.Process.Pid, stopTimeout)
	}
}

// Stop sends SIGTERM (and SIGCONT, in case it is paused) and waits for a
// clean exit; after stopTimeout it kills the node.
func (n *node) Stop() error {
	p := n.detach()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("node %d: no exit within %v of SIGTERM; killed", n.id, stopTimeout)
	}
}

// Pause SIGSTOPs the node: it holds its sockets but answers nothing.
func (n *node) Pause() { n.signalGroup(syscall.SIGSTOP) }

// Resume SIGCONTs a paused node.
func (n *node) Resume() { n.signalGroup(syscall.SIGCONT) }

func (n *node) signalGroup(sig syscall.Signal) {
	if p := n.current(); p != nil {
		if err := syscall.Kill(-p.cmd.Process.Pid, sig); err != nil {
			n.t.Errorf("node %d: %v: %v", n.id, sig, err)
		}
	}
}

// Restart starts a stopped or killed node again on the same data directory
// and ports, and waits until it accepts clients.
func (n *node) Restart() {
	n.t.Helper()
	err := n.launch()
	if err == nil {
		err = n.awaitReady()
	}
	if err != nil {
		n.t.Fatalf("restart: %v\n%s", err, n.logTail(4000))
	}
}

// logTail is the end of the node's stderr, across runs.
func (n *node) logTail(max int) string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	if len(b) > max {
		return "..." + string(b[len(b)-max:])
	}
	return string(b)
}
