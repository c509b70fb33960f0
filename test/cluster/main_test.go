package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

var (
	// binDir holds the binary built for this run; removed by TestMain.
	binDir  string
	binOnce sync.Once
	binPath string
	binErr  error

	// live holds every child not yet reaped, so TestMain's exit path can
	// kill whatever a failed or panicking test left behind.
	liveMu sync.Mutex
	live   = map[*exec.Cmd]struct{}{}
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sluice-cluster-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	binDir = dir
	defer os.RemoveAll(dir)
	defer killAll()
	return m.Run()
}

// sluiceBinary returns the binary under test: SLUICE_BIN, or ./cmd/sluice
// built once on first use, so the checker's unit tests build nothing.
func sluiceBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if binPath = os.Getenv("SLUICE_BIN"); binPath != "" {
			return
		}
		binPath = filepath.Join(binDir, "sluice")
		ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/sluice")
		cmd.Dir = filepath.Join("..", "..")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build ./cmd/sluice: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func killAll() {
	liveMu.Lock()
	defer liveMu.Unlock()
	for cmd := range live {
		_ = cmd.Process.Kill()
	}
}

// longTests says whether SLUICE_LONG_TESTS=1 asked for the long forms.
func longTests() bool { return os.Getenv("SLUICE_LONG_TESTS") == "1" }

// short returns s normally and long under SLUICE_LONG_TESTS=1.
func short[T any](s, long T) T {
	if longTests() {
		return long
	}
	return s
}

// seeded returns the test's random source: SLUICE_CLUSTER_SEED when set,
// else a fresh seed. The seed is logged with the command that replays it.
func seeded(t testing.TB) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SLUICE_CLUSTER_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("SLUICE_CLUSTER_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay: SLUICE_CLUSTER_SEED=%d go test -v -run '^%s$' ./test/cluster/)", seed, seed, t.Name())
	return rand.New(rand.NewPCG(seed, seed^0x5eed))
}

// eventually polls cond until it returns nil or the bound passes, then
// fails with the last error.
func eventually(t testing.TB, bound time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(bound, cond); err != nil {
		t.Fatalf("%s: not within %v: %v", what, bound, err)
	}
}

// poll is eventually without the test: the last error, or nil.
func poll(bound time.Duration, cond func() error) error {
	deadline := time.Now().Add(bound)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
