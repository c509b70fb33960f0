// Package httpserver is the node's HTTP listener (http.listener): Prometheus
// metrics at /metrics, liveness at /healthz, readiness at /readyz, Go's
// profiler at /debug/pprof/ when enabled, and the web console at /.
//
// It knows nothing of what it serves: the node hands it the handlers and a
// readiness check, so the listener can come up before the node has
// recovered its logs and answer "not ready, and why" meanwhile.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Options configure Start.
type Options struct {
	// Metrics serves /metrics; nil answers 404.
	Metrics http.Handler
	// Ready says whether the node serves clients; a non-nil error is the
	// reason it does not, sent with 503. Nil means always ready.
	Ready func() error
	// Console is mounted at "/"; nil serves a small index page instead.
	Console http.Handler
	// Pprof serves Go's profiler under /debug/pprof/ (http.pprof.enabled);
	// off, those paths are 404.
	Pprof  bool
	Logger *slog.Logger // nil: slog.Default()
}

// Timeouts. No write timeout: a CPU profile streams for as long as its
// seconds parameter asks (30 s by default).
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Server is a running HTTP listener.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// Start serves on ln until Shutdown.
func Start(ln net.Listener, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{ln: ln, done: make(chan struct{})}
	s.srv = &http.Server{
		Handler:           NewHandler(opts),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logger.Error("http listener stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	return s
}

// Addr is the bound address (the real port when http.listener asked for 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes what is left (a streaming profile).
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	<-s.done
	if err != nil {
		return fmt.Errorf("http listener %s: %w", s.ln.Addr(), err)
	}
	return nil
}

// NewHandler routes the listener's paths; exported for tests of what is
// mounted where.
func NewHandler(opts Options) http.Handler {
	mux := http.NewServeMux()
	if opts.Metrics != nil {
		mux.Handle("GET /metrics", opts.Metrics)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { serveReady(w, opts.Ready) })
	if opts.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	} else {
		// Registered even when off, so a console at "/" cannot answer
		// for it: off means 404, whatever else is mounted.
		mux.Handle("/debug/pprof/", http.NotFoundHandler())
	}
	if opts.Console != nil {
		mux.Handle("/", opts.Console)
	} else {
		mux.HandleFunc("GET /{$}", serveIndex)
	}
	return mux
}

// readiness is /readyz's body.
type readiness struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

func serveReady(w http.ResponseWriter, ready func() error) {
	r := readiness{Ready: true}
	status := http.StatusOK
	if ready != nil {
		if err := ready(); err != nil {
			r, status = readiness{Reason: err.Error()}, http.StatusServiceUnavailable
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(r)
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sluice</title></head>
<body>
<h1>Sluice</h1>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>: 200 while the process is alive</li>
<li><a href="/readyz">/readyz</a>: 200 when this node serves clients, else 503 and why</li>
</ul>
</body></html>
`))

func serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexPage.Execute(w, nil)
}
