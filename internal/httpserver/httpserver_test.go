package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestHTTPHealthAndReadiness(t *testing.T) {
	var reason error = errors.New("recovering partition logs")
	h := NewHandler(Options{Ready: func() error { return reason }})
	if code, body := get(t, h, "/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	code, body := get(t, h, "/readyz")
	var r readiness
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("/readyz body %q: %v", body, err)
	}
	if code != http.StatusServiceUnavailable || r.Ready || r.Reason != "recovering partition logs" {
		t.Errorf("/readyz while not ready = %d %+v", code, r)
	}
	reason = nil
	if code, body := get(t, h, "/readyz"); code != 200 || !strings.Contains(body, `"ready":true`) {
		t.Errorf("/readyz when ready = %d %q", code, body)
	}
}

func TestHTTPPprofIsOffUnlessEnabled(t *testing.T) {
	console := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("console")) })
	off := NewHandler(Options{Console: console})
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		if code, _ := get(t, off, path); code != 404 {
			t.Errorf("pprof off: %s = %d, want 404 (not the console)", path, code)
		}
	}
	on := NewHandler(Options{Pprof: true})
	if code, body := get(t, on, "/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof on: /debug/pprof/ = %d", code)
	}
	if code, _ := get(t, on, "/debug/pprof/heap?debug=1"); code != 200 {
		t.Errorf("pprof on: heap = %d", code)
	}
}

func TestHTTPConsoleOrIndexAtRoot(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) })
	index := NewHandler(Options{Metrics: metrics})
	if code, body := get(t, index, "/"); code != 200 || !strings.Contains(body, `href="/metrics"`) {
		t.Errorf("index = %d %q", code, body)
	}
	if code, _ := get(t, index, "/no/such/page"); code != 404 {
		t.Errorf("unknown path without a console = %d, want 404", code)
	}
	console := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("console " + r.URL.Path)) })
	withConsole := NewHandler(Options{Metrics: metrics, Console: console})
	if _, body := get(t, withConsole, "/topics/orders"); body != "console /topics/orders" {
		t.Errorf("console not mounted at /: %q", body)
	}
	if _, body := get(t, withConsole, "/metrics"); body != "metrics" {
		t.Errorf("/metrics went to the console: %q", body)
	}
}

func TestHTTPServerServesAndShutsDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := Start(ln, Options{})
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("GET /healthz = %d %q", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Get("http://" + s.Addr().String() + "/healthz"); err == nil {
		t.Error("still serving after Shutdown")
	}
}
