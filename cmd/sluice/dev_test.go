package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// devChildEnv makes the test binary act as the sluice binary: `sluice dev
// cluster` runs its nodes with os.Executable, which in a test is this
// binary, and the children inherit the variable.
const devChildEnv = "SLUICE_TEST_RUN_AS_SLUICE"

func TestMain(m *testing.M) {
	if os.Getenv(devChildEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe to write from the command while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePortRange returns the first of n consecutive loopback ports that are
// free now, from a random base so parallel runs rarely collide.
func freePortRange(t *testing.T, n int, avoid ...int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(40000)
		ok := true
		for _, a := range avoid {
			if base < a+n && a < base+n {
				ok = false
			}
		}
		var lns []net.Listener
		for p := base; ok && p < base+n; p++ {
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

func waitFor(t *testing.T, what string, timeout time.Duration, done func() bool, log func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; output:\n%s", what, log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDevClusterFormsSurvivesANodeAndStops starts three real node
// processes, uses the cluster, kills one node (the others must keep
// running and say which exited), then stops with the context as Ctrl-C
// would, expecting exit 0 and clean stops.
func TestDevClusterFormsSurvivesANodeAndStops(t *testing.T) {
	t.Setenv(devChildEnv, "1")
	port := freePortRange(t, 3)
	controllerPort := freePortRange(t, 3, port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"dev", "cluster", "--dir", t.TempDir(), "--port", strconv.Itoa(port),
			"--controller-port", strconv.Itoa(controllerPort), "--set", "num.partitions=2"}, strings.NewReader(""), &stdout, &stderr)
	}()
	output := func() string { return stdout.String() + stderr.String() }
	waitFor(t, "the cluster", 30*time.Second, func() bool {
		select {
		case c := <-code:
			t.Fatalf("dev cluster exited with %d before it was ready:\n%s", c, output())
		default:
		}
		return strings.Contains(stdout.String(), "3 nodes ready")
	}, output)
	bootstrap := fmt.Sprintf("127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", port, port+1, port+2)
	if !strings.Contains(stdout.String(), "Bootstrap servers: "+bootstrap) {
		t.Fatalf("summary does not name the bootstrap servers %s:\n%s", bootstrap, stdout.String())
	}
	// The summary on stdout can overtake a node's last lines, which reach
	// stderr through that node's own copier.
	waitFor(t, "node 2's prefixed lines", 10*time.Second, func() bool {
		return strings.Contains(stderr.String(), "[node 2] sluice: accepting Kafka clients on")
	}, output)

	_, errOut, c := runCLI(t, "topic", "create", "t", "-r", "3", "--brokers", bootstrap)
	requireCode(t, c, exitOK, errOut)
	kc, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
	defer qcancel()
	brokers, err := kadm.NewClient(kc).ListBrokers(qctx)
	if err != nil || len(brokers) != 3 {
		t.Fatalf("brokers %v, err %v; want 3", brokers.NodeIDs(), err)
	}

	pid := regexp.MustCompile(`node 3 .* pid (\d+)`).FindStringSubmatch(stdout.String())
	if pid == nil {
		t.Fatalf("no pid for node 3 in:\n%s", stdout.String())
	}
	n, _ := strconv.Atoi(pid[1])
	if err := syscall.Kill(n, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node 3's exit to be reported", 10*time.Second, func() bool {
		return strings.Contains(stderr.String(), "node 3 exited (signal: killed); the other 2 keep running")
	}, output)

	stopped := time.Now()
	cancel()
	select {
	case c := <-code:
		requireCode(t, c, exitOK, output())
	case <-time.After(devStopTimeout + 5*time.Second):
		t.Fatalf("dev cluster did not stop:\n%s", output())
	}
	for _, node := range []string{"[node 1]", "[node 2]"} {
		if !strings.Contains(stderr.String(), node+" time=") || !strings.Contains(stderr.String(), "stopped cleanly") {
			t.Fatalf("%s did not stop cleanly:\n%s", node, stderr.String())
		}
	}
	t.Logf("stopped in %v", time.Since(stopped))
}

// TestDevClusterPortInUse fails before starting anything, naming the port.
func TestDevClusterPortInUse(t *testing.T) {
	port := freePortRange(t, 3)
	controllerPort := freePortRange(t, 3, port)
	taken := port + 1 // node 2's Kafka port
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(taken)))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, stderr, code := runCLI(t, "dev", "cluster", "--dir", t.TempDir(), "--port", strconv.Itoa(port),
		"--controller-port", strconv.Itoa(controllerPort))
	requireCode(t, code, exitError, stderr)
	if want := fmt.Sprintf("port %d (node 2's Kafka listener) is not free", taken); !strings.Contains(stderr, want) {
		t.Fatalf("stderr %q, want %q", stderr, want)
	}
}

func TestDevClusterUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "0"}, "--nodes 0: want 1 to 16"},
		{[]string{"--port", "65534"}, "--port 65534: the 3 ports from it must be in 1 to 65535"},
		{[]string{"--port", "9092", "--controller-port", "9094"}, "ranges of 3 ports overlap"},
		{[]string{"--set", "log.retention.hours"}, `--set "log.retention.hours": want key=value`},
	} {
		_, stderr, code := runCLI(t, append([]string{"dev", "cluster"}, tc.args...)...)
		requireCode(t, code, exitUsage, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr %q, want %q", tc.args, stderr, tc.want)
		}
	}
}
