package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestCompatClients runs test/compat/run.sh (kcat, kafka-python,
// confluent-kafka, kafkajs against a fresh `sluice serve`, then against a
// fresh three-node cluster) when
// SLUICE_COMPAT=1. It installs packages and needs the registries, so a
// plain `go test ./...` leaves it out and stays hermetic.
func TestCompatClients(t *testing.T) {
	if os.Getenv("SLUICE_COMPAT") != "1" {
		t.Skip("set SLUICE_COMPAT=1 to run the third-party client checks (test/compat/run.sh)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repoRoot, "test", "compat", "run.sh"))
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "SLUICE_BIN="+sluiceBin)
	// Its own process group, so a timeout ends the script and the broker
	// it started, not just bash; and the kernel ends it if we die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("test/compat/run.sh:\n%s", out)
	if err != nil {
		t.Fatalf("test/compat/run.sh: %v", err)
	}
}
