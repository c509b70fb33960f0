package node

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/console"
	"github.com/sluicelog/sluice/internal/peer"
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

// startConsole builds the console against one of this node's own client
// listeners. It dials the bound address rather than the advertised one:
// the advertised host is for clients elsewhere and may not resolve here.
// A wildcard bind is reached on loopback. A console that cannot be built
// is logged, not fatal: the broker serves Kafka clients without it.
//
// It prefers a PLAINTEXT listener. On a node without one it uses the
// inter-broker listener with the broker's own credentials (its
// certificate, its inter.broker.sasl.username), so the console keeps
// working on a secured node; the HTTP listener has no authentication of
// its own, which is why it binds to localhost by default.
func (n *Node) startConsole(lns []clientListener) {
	if n.consoleSlot == nil {
		return
	}
	l, opts, err := n.consoleListener(lns)
	if err != nil {
		n.log.Warn("web console not started", "err", err)
		return
	}
	addr := l.ln.Addr().(*net.TCPAddr)
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
		ClientOptions:      opts,
	})
	if err != nil {
		n.log.Warn("web console not started", "err", err)
		return
	}
	n.consoleSlot.console.Store(c)
}

// consoleListener picks the listener the console dials and the client
// options it needs there.
func (n *Node) consoleListener(lns []clientListener) (clientListener, []kgo.Opt, error) {
	for _, l := range lns {
		if l.cfg.SecurityProtocol == config.ProtocolPlaintext {
			return l, nil, nil
		}
	}
	name := n.opts.Config.InterBrokerListener()
	l := lns[0]
	for _, candidate := range lns {
		if candidate.cfg.Name == name {
			l = candidate
		}
	}
	tlsCfg, sasl, err := n.interBrokerOptions(l.cfg.Name, l.cfg.SecurityProtocol)
	if err != nil {
		return l, nil, fmt.Errorf("no PLAINTEXT listener, and the broker's own credentials for %s: %w", l.cfg.Name, err)
	}
	var opts []kgo.Opt
	if tlsCfg != nil {
		opts = append(opts, kgo.DialTLSConfig(tlsCfg))
	}
	if sasl != nil {
		mech, err := kgoSASL(sasl)
		if err != nil {
			return l, nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return l, opts, nil
}

// kgoSASL is a peer SASL setting as a franz-go mechanism.
func kgoSASL(s *peer.SASL) (sasl.Mechanism, error) {
	switch s.Mechanism {
	case auth.MechanismPlain:
		return plain.Auth{User: s.User, Pass: s.Password}.AsMechanism(), nil
	case auth.MechanismScramSHA256:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha256Mechanism(), nil
	case auth.MechanismScramSHA512:
		return scram.Auth{User: s.User, Pass: s.Password}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("SASL mechanism %q", s.Mechanism)
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
