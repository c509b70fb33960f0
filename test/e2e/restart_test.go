package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestE2ERestartAfterKill9ServesHeldClients kills a broker with SIGKILL
// after records were acknowledged, restarts it on the same data directory
// and port, and one second after the exec (before the broker says it
// serves) starts a franz-go consumer and, when kcat is installed,
// `kcat -C -e`: their connections are held until the broker serves, and
// both read every acknowledged record. The restarted broker names the
// incarnation that ran on its directory and registers at once: it never
// waits for the killed process's broker session to expire.
func TestE2ERestartAfterKill9ServesHeldClients(t *testing.T) {
	addr := freeLoopbackAddr(t)
	b := startBroker(t, withArgs("--listen", addr))
	const topic, n = "restarted", 200
	createTopic(t, newAdmin(t, addr), topic, 2, nil)
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()))
	var want []string
	for i := range n {
		v := fmt.Sprintf("acked-%04d", i)
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		want = append(want, v)
	}
	cl.Close()
	b.kill9()

	started := make(chan error, 1)
	go func() { started <- b.start() }()
	// Not a timing assertion: the clients must connect while the broker
	// is still starting, which is what this test is about.
	time.Sleep(time.Second)
	kcatOut := make(chan kcatResult, 1)
	if _, err := exec.LookPath("kcat"); err == nil {
		go func() { kcatOut <- runKcatConsume(addr, topic) }()
	} else {
		t.Log("kcat not installed: only the franz-go consumer runs")
		close(kcatOut)
	}
	got := consumeN(t, addr, topic, n)
	if err := <-started; err != nil {
		t.Fatalf("restart: %v", err)
	}
	values := make([]string, 0, len(got))
	for _, r := range got {
		values = append(values, string(r.Value))
	}
	requireSameSet(t, "franz-go", want, values)
	if res, ok := <-kcatOut; ok {
		if res.err != nil {
			t.Fatalf("kcat -C -e started 1 s after the restart: %v\n%s", res.err, res.stderr)
		}
		requireSameSet(t, "kcat", want, res.values)
	}
	if strings.Contains(b.logs.String(), "waiting for the previous run's broker session to expire") {
		t.Error("the restarted broker waited for its previous session to expire")
	}
}

type kcatResult struct {
	values []string
	stderr string
	err    error
}

// runKcatConsume reads the topic from the beginning to its end with
// kcat -C -e, as a user checking what survived a crash would.
func runKcatConsume(addr, topic string) kcatResult {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kcat", "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return kcatResult{values: strings.Fields(stdout.String()), stderr: stderr.String(), err: err}
}

func requireSameSet(t *testing.T, who string, want, got []string) {
	t.Helper()
	w, g := append([]string(nil), want...), append([]string(nil), got...)
	sort.Strings(w)
	sort.Strings(g)
	if strings.Join(w, ",") != strings.Join(g, ",") {
		t.Fatalf("%s read %d records, want the %d acknowledged ones (first read: %.60v)", who, len(g), len(w), g)
	}
}

// freeLoopbackAddr returns a loopback address whose port was free a
// moment ago: the broker is restarted on the same port, so clients
// started before it serves know where to connect.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
