package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runToExit runs `sluice serve` expecting it to stop on its own (a bad
// configuration) and returns its exit error and stderr. A process that
// starts serving instead is stopped and reported.
func runToExit(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	var logs lockedBuffer
	ready := make(chan string, 1)
	full := append([]string{"serve", "--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0"}, args...)
	p, err := launch(full, env, &logs, ready)
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	select {
	case <-p.done:
		return logs.String(), p.waitErr
	case addr := <-ready:
		p.killGroup()
		<-p.done
		t.Fatalf("sluice serve %v started serving on %s; want a start-up error", args, addr)
	case <-time.After(startTimeout):
		p.killGroup()
		<-p.done
		t.Fatalf("sluice serve %v neither failed nor served within %v", args, startTimeout)
	}
	return "", nil
}

// TestE2EInvalidConfigStopsStartup: an invalid value from any source stops
// start-up with a non-zero exit and a message naming the key.
func TestE2EInvalidConfigStopsStartup(t *testing.T) {
	propsFile := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(propsFile, []byte("# a Kafka server.properties\nlog.retention.ms=forever\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		key  string
	}{
		{"set", nil, []string{"--set", "log.segment.bytes=huge"}, "log.segment.bytes"},
		{"set-enum", nil, []string{"--set", "log.flush.policy=sometimes"}, "log.flush.policy"},
		{"env", []string{"SLUICE_NUM_PARTITIONS=many"}, nil, "num.partitions"},
		{"file", nil, []string{"--config", propsFile}, "log.retention.ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stderr, err := runToExit(t, c.env, c.args...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() == 0 {
				t.Errorf("exit: %v, want a non-zero exit status", err)
			}
			if !strings.Contains(stderr, c.key) {
				t.Errorf("stderr does not name %s:\n%s", c.key, stderr)
			}
		})
	}
}

// TestE2EConfigPrecedence: --set beats SLUICE_* beats --config file, seen
// through num.partitions of an auto-created topic.
func TestE2EConfigPrecedence(t *testing.T) {
	propsFile := filepath.Join(t.TempDir(), "server.properties")
	if err := os.WriteFile(propsFile, []byte("num.partitions=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opts []brokerOpt
		want int
	}{
		{"file", []brokerOpt{withArgs("--config", propsFile)}, 2},
		{"env-over-file", []brokerOpt{withArgs("--config", propsFile), withEnv("SLUICE_NUM_PARTITIONS=3")}, 3},
		{"set-over-env", []brokerOpt{withArgs("--config", propsFile), withEnv("SLUICE_NUM_PARTITIONS=3"), withSet("num.partitions=4")}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := startBroker(t, c.opts...)
			cl := newClient(t, b.Addr(), kgo.AllowAutoTopicCreation())
			if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "auto", Value: []byte("x")}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			md, err := newAdmin(t, b.Addr()).ListTopics(testCtx(t), "auto")
			if err != nil {
				t.Fatalf("ListTopics: %v", err)
			}
			if n := len(md["auto"].Partitions); n != c.want {
				t.Errorf("auto-created topic has %d partitions, want %d", n, c.want)
			}
		})
	}
}

// TestE2ETwoInstancesSideBySide runs two brokers with their own data dirs
// and ports; each sees only its own topics and records.
func TestE2ETwoInstancesSideBySide(t *testing.T) {
	a := startBroker(t)
	b := startBroker(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("both brokers report %s", a.Addr())
	}
	for _, x := range []struct {
		br    *broker
		topic string
	}{{a, "only-on-a"}, {b, "only-on-b"}} {
		createTopic(t, newAdmin(t, x.br.Addr()), x.topic, 1, nil)
		createTopic(t, newAdmin(t, x.br.Addr()), "shared-name", 1, nil)
		cl := newClient(t, x.br.Addr())
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Topic: "shared-name", Value: []byte(x.topic)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", x.br.Addr(), err)
		}
	}
	for _, x := range []struct {
		br          *broker
		mine, other string
	}{{a, "only-on-a", "only-on-b"}, {b, "only-on-b", "only-on-a"}} {
		md, err := newAdmin(t, x.br.Addr()).ListTopics(testCtx(t))
		if err != nil {
			t.Fatalf("ListTopics: %v", err)
		}
		if !md.Has(x.mine) || md.Has(x.other) {
			t.Errorf("broker %s lists %v; want %s and not %s", x.br.Addr(), md.Names(), x.mine, x.other)
		}
		got := consumeN(t, x.br.Addr(), "shared-name", 1)
		if len(got) != 1 || string(got[0].Value) != x.mine {
			t.Errorf("broker %s: shared-name holds %q, want only %q", x.br.Addr(), got[0].Value, x.mine)
		}
	}
	// Stopping one leaves the other serving.
	if err := a.stop(); err != nil {
		t.Errorf("stop a: %v", err)
	}
	if _, err := newAdmin(t, b.Addr()).ListTopics(testCtx(t)); err != nil {
		t.Errorf("b after a stopped: %v", err)
	}
}

// TestE2ERestartKeepsData: a clean SIGTERM restart keeps topics, configs
// and records.
func TestE2ERestartKeepsData(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	createTopic(t, adm, "kept", 2, map[string]*string{"retention.ms": strp("7200000")})
	cl := newClient(t, b.Addr(), kgo.DefaultProduceTopic("kept"))
	want := makeRecords(50)
	for _, w := range want {
		if err := cl.ProduceSync(testCtx(t), &kgo.Record{Key: w.key, Value: w.value, Headers: w.headers}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	cl.Close()
	if err := b.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	b.restart()
	compareRecords(t, want, consumeN(t, b.Addr(), "kept", len(want)))
	adm = newAdmin(t, b.Addr())
	if err := wantTopicConfig(testCtx(t), adm, "kept", "retention.ms", "7200000"); err != nil {
		t.Errorf("after restart: %v", err)
	}
}
