package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var httpClient = &http.Client{Timeout: 5 * time.Second}

// readyz returns /readyz's status and reason; ok is false while nothing
// listens.
func readyz(t *testing.T, addr string) (code int, reason string, ok bool) {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, "", false
	}
	defer resp.Body.Close()
	var body struct {
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/readyz body: %v", err)
	}
	if body.Ready != (resp.StatusCode == 200) {
		t.Fatalf("/readyz %d says ready=%v", resp.StatusCode, body.Ready)
	}
	return resp.StatusCode, body.Reason, true
}

// TestE2EReadyzAcrossKill9: the real binary's /readyz is 200 once it
// accepts clients; after kill -9 the restart must wait for the crashed
// run's broker session to expire, and /readyz says 503 and why meanwhile,
// then 200 again. /metrics counts the records produced before the crash.
func TestE2EReadyzAcrossKill9(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	ln.Close()
	// A short session, so the restart waits seconds, not 9 s.
	b := startBroker(t, withArgs("--http", httpAddr),
		withSet("broker.session.timeout.ms=3000", "broker.heartbeat.interval.ms=500"))
	if code, reason, _ := readyz(t, httpAddr); code != 200 {
		t.Fatalf("/readyz after the ready line = %d (%s)", code, reason)
	}
	const records = 20
	createTopic(t, newAdmin(t, b.Addr()), "observed", 1, nil)
	p := newClient(t, b.Addr(), kgo.DefaultProduceTopic("observed"))
	for i := range records {
		if err := p.ProduceSync(testCtx(t), &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := httpClient.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf("kafka_server_brokertopicmetrics_messagesin_total{topic=\"observed\"} %d\n", records); !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %q", want)
	}

	b.kill9()
	// A restart that names its predecessor's incarnation registers at
	// once; without the file that names it, the node must wait out the
	// old session, and /readyz has to say so meanwhile.
	if err := os.Remove(filepath.Join(b.dataDir, ".sluice_incarnation")); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- b.start() }()
	reasons := map[string]bool{}
	for waiting := true; waiting; {
		select {
		case err := <-started:
			if err != nil {
				t.Fatalf("restart: %v", err)
			}
			waiting = false
		default:
			if code, reason, ok := readyz(t, httpAddr); ok && code != 200 {
				if code != 503 || reason == "" {
					t.Fatalf("/readyz while restarting = %d %q", code, reason)
				}
				reasons[reason] = true
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	t.Logf("not ready on the way: %v", reasons)
	if !reasons["registering with the controller and waiting to be unfenced"] {
		t.Errorf("the restart waited for the old session without /readyz saying so; reasons seen: %v", reasons)
	}
	if code, reason, _ := readyz(t, httpAddr); code != 200 {
		t.Fatalf("/readyz after the restart = %d (%s)", code, reason)
	}
}
