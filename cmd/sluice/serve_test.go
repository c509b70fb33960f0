package main

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/config"
)

var httpLine = regexp.MustCompile(`(?m)^sluice: serving HTTP \(console, metrics, health\) on http://(127\.0\.0\.1:(\d+))/$`)

// TestServeHTTPPortZeroIsNamed: with --http on port 0 the line before the
// ready line names the port really bound, and it serves; the start-up
// log line (JSON here, log.format=json) names both listeners.
func TestServeHTTPPortZeroIsNamed(t *testing.T) {
	stderr := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, config.Sources{Flags: map[string]string{
			config.LogDirs: t.TempDir(), config.Listeners: "PLAINTEXT://127.0.0.1:0",
			config.HTTPListener: "127.0.0.1:0", config.LogFormat: config.LogFormatJSON,
		}}, "info", stderr)
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), devReadyLine) {
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 30 s:\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	out := stderr.String()
	m := httpLine.FindStringSubmatch(out)
	if m == nil || m[2] == "0" {
		t.Fatalf("no HTTP line with a real port in:\n%s", out)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + m[1] + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/readyz on the named address = %d", resp.StatusCode)
	}
	var started struct {
		Msg, Kafka, HTTP, Cluster, Version string
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, `"msg":"sluice started"`) {
			if err := json.Unmarshal([]byte(line), &started); err != nil {
				t.Fatalf("start-up line %q: %v", line, err)
			}
		}
	}
	if started.HTTP != m[1] || started.Kafka == "" || started.Cluster == "" || started.Version == "" {
		t.Errorf("start-up line %+v does not name version, cluster and both listeners (http %s)", started, m[1])
	}
}
