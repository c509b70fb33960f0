package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/node"
	"github.com/sluicelog/sluice/internal/vfs"
)

// cliTestTimeout bounds one in-process command in a test.
const cliTestTimeout = 60 * time.Second

// startBroker starts a cluster of one in-process on a free loopback port
// and returns its address for --brokers. It is shut down when the test
// ends. sets are extra config keys (key=value).
func startBroker(t *testing.T, sets ...string) string {
	t.Helper()
	all := append([]string{"log.dirs=" + t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0", "http.listener=127.0.0.1:0"}, sets...)
	cfg, _, err := config.Load(vfs.OS(), config.Sources{Sets: all})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := node.Start(ctx, node.Options{Config: cfg, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	})
	return n.Addr().String()
}

var nameSeq struct {
	sync.Mutex
	n int
}

// uniqueName returns prefix plus a number no other call in this process got.
func uniqueName(prefix string) string {
	nameSeq.Lock()
	defer nameSeq.Unlock()
	nameSeq.n++
	return prefix + "-" + strconv.Itoa(nameSeq.n)
}

// deadBroker returns a loopback address on which nothing listens: a port
// that was free a moment ago.
func deadBroker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestStartBrokerAnswers(t *testing.T) {
	addr := startBroker(t)
	e := &clientEnv{brokers: addr, timeout: 10 * time.Second}
	cl, err := e.client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cl.Close()
}

func TestClientNamesUnreachableBroker(t *testing.T) {
	addr := deadBroker(t)
	e := &clientEnv{brokers: addr, timeout: 5 * time.Second}
	_, err := e.client(context.Background())
	if err == nil {
		t.Fatal("connected to a dead address")
	}
	want := "cannot reach " + addr + ": connection refused — is `sluice serve` running?"
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q, want it to contain %q", err, want)
	}
}
