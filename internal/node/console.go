package node

import (
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/sluicelog/sluice/internal/console"
)

// consoleSlot is the console's place at "/" of the HTTP listener. The
// listener serves from the first second of start-up (so /readyz can say
// what the node waits for), but the console is a Kafka client of this
// node and can be built only once the client listener is bound; until
// then the slot says so instead of serving pages that would all fail.
type consoleSlot struct {
	console atomic.Pointer[console.Console]
}

func (s *consoleSlot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if c := s.console.Load(); c != nil {
		c.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "sluice: the console opens once this node serves Kafka clients; /readyz says what it waits for",
		http.StatusServiceUnavailable)
}

// startConsole builds the console against this node's own client
// listener. It dials the bound address rather than the advertised one:
// the advertised host is for clients elsewhere and may not resolve here.
// A wildcard bind is reached on loopback. A console that cannot be built
// is logged, not fatal: the broker serves Kafka clients without it.
func (n *Node) startConsole(ln net.Listener) {
	if n.consoleSlot == nil {
		return
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	c, err := console.New(console.Options{
		Brokers: []string{net.JoinHostPort(host, strconv.Itoa(addr.Port))},
		Logger:  n.log,
		Clock:   n.opts.Clock,
		// An idle broker pays nothing for a console nobody opens.
		SampleOnFirstVisit: true,
	})
	if err != nil {
		n.log.Warn("web console not started", "err", err)
		return
	}
	n.consoleSlot.console.Store(c)
}

// stopConsole closes the console's Kafka client and sampler; pages asked
// for afterwards get the slot's "not serving" answer.
func (n *Node) stopConsole() error {
	if n.consoleSlot == nil {
		return nil
	}
	if c := n.consoleSlot.console.Swap(nil); c != nil {
		return c.Close()
	}
	return nil
}
