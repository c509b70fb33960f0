package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/netserver"
	"github.com/sluicelog/sluice/internal/peer"
	"github.com/sluicelog/sluice/internal/vfs"
)

// maxPEMBytes bounds a certificate, key or password file: a PEM chain is
// a few kilobytes, and a larger file is a wrong path.
const maxPEMBytes = 1 << 20

// clientListener is one bound client listener and what clients of it are
// told (the bound port when the advertised one is 0).
type clientListener struct {
	cfg  config.ListenerConfig
	ln   net.Listener
	host string
	port int
}

// listenAll binds every client listener (listeners), so the broker can
// register the real ports before it serves.
func (n *Node) listenAll() ([]clientListener, error) {
	configs, err := n.opts.Config.ClientListeners()
	if err != nil {
		return nil, fmt.Errorf("listeners: %w", err)
	}
	var out []clientListener
	for _, c := range configs {
		ln, err := net.Listen("tcp", net.JoinHostPort(c.Host, strconv.Itoa(c.Port)))
		if err != nil {
			closeListeners(out)
			return nil, fmt.Errorf("listener %s: %w", c.Name, err)
		}
		port := c.AdvertisedPort
		// Port 0 (tests, `sluice dev cluster`) binds a free port; clients
		// must be told that port, not 0, or no client could connect.
		if port == 0 {
			port = ln.Addr().(*net.TCPAddr).Port
		}
		out = append(out, clientListener{cfg: c, ln: ln, host: c.AdvertisedHost, port: port})
	}
	return out, nil
}

func closeListeners(ls []clientListener) {
	for _, l := range ls {
		l.ln.Close()
	}
}

// registeredListeners are what the broker registers: every listener by
// name, so other brokers' Metadata can point each client at the listener
// it uses, and followers at inter.broker.listener.name.
func registeredListeners(ls []clientListener) []metadata.Listener {
	out := make([]metadata.Listener, 0, len(ls))
	for _, l := range ls {
		out = append(out, metadata.Listener{Name: l.cfg.Name, Host: l.host, Port: uint16(l.port), SecurityProtocol: l.cfg.SecurityProtocol})
	}
	return out
}

// listenerSecurity builds a listener's TLS and SASL settings from the
// config, reading the PEM files once at start-up.
func (n *Node) listenerSecurity(l config.ListenerConfig) (netserver.Security, error) {
	cfg := n.opts.Config
	sec := netserver.Security{
		Listener: l.Name, SecurityProtocol: l.SecurityProtocol,
		SASLMechanisms:                 config.SplitList(cfg.ListenerValue(l.Name, config.SASLEnabledMechanisms)),
		HandshakeTimeout:               time.Duration(cfg.Int32(config.SASLHandshakeTimeoutMs)) * time.Millisecond,
		MaxUnauthenticatedRequestBytes: cfg.Int32(config.SASLServerMaxReceiveSize),
	}
	if v := cfg.ListenerValue(l.Name, config.ConnectionsMaxReauthMs); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 {
			return sec, fmt.Errorf("listener %s: %s=%q: want a number of milliseconds", l.Name, config.ConnectionsMaxReauthMs, v)
		}
		sec.ReauthMs = ms
	}
	if l.SecurityProtocol != config.ProtocolSSL && l.SecurityProtocol != config.ProtocolSASLSSL {
		return sec, nil
	}
	certPEM, keyPEM, caPEM, err := n.readTLSFiles(l.Name)
	if err != nil {
		return sec, err
	}
	if sec.TLS, err = auth.ServerTLS(certPEM, keyPEM, caPEM, cfg.ClientAuth(l)); err != nil {
		return sec, fmt.Errorf("listener %s: %w", l.Name, err)
	}
	if sec.PrincipalRules, err = auth.ParsePrincipalRules(cfg.ListenerValue(l.Name, config.SSLPrincipalMappingRules)); err != nil {
		return sec, fmt.Errorf("listener %s: %w", l.Name, err)
	}
	return sec, nil
}

// readTLSFiles reads a listener's certificate, key and CA (the CA may be
// unset).
func (n *Node) readTLSFiles(listener string) (certPEM, keyPEM, caPEM []byte, err error) {
	cfg := n.opts.Config
	read := func(key string) ([]byte, error) {
		path := cfg.ListenerValue(listener, key)
		if path == "" {
			return nil, nil
		}
		b, err := vfs.ReadFile(n.opts.FS, path, maxPEMBytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return b, nil
	}
	if certPEM, err = read(config.SSLCertificateLocation); err != nil {
		return nil, nil, nil, err
	}
	if keyPEM, err = read(config.SSLKeyLocation); err != nil {
		return nil, nil, nil, err
	}
	if caPEM, err = read(config.SSLCALocation); err != nil {
		return nil, nil, nil, err
	}
	return certPEM, keyPEM, caPEM, nil
}

// controllerTLS is the quorum's mutual TLS, when
// controller.listener.security.protocol is SSL.
func (n *Node) controllerTLS() (server, client *tls.Config, err error) {
	if n.opts.Config.String(config.ControllerListenerSecurity) != config.ProtocolSSL {
		return nil, nil, nil
	}
	certPEM, keyPEM, caPEM, err := n.readTLSFiles("")
	if err != nil {
		return nil, nil, fmt.Errorf("controller TLS: %w", err)
	}
	if server, client, err = auth.MutualTLS(certPEM, keyPEM, caPEM); err != nil {
		return nil, nil, fmt.Errorf("controller TLS: %w", err)
	}
	return server, client, nil
}

// interBrokerOptions is how a follower reaches a leader's listener of the
// given protocol: TLS checked against the listener's CA, presenting this
// broker's certificate (mutual TLS, for SSL listeners that require it),
// and SASL as inter.broker.sasl.username with
// sasl.mechanism.inter.broker.protocol.
func (n *Node) interBrokerOptions(listener, protocol string) (*tls.Config, *peer.SASL, error) {
	cfg := n.opts.Config
	var tlsCfg *tls.Config
	if protocol == config.ProtocolSSL || protocol == config.ProtocolSASLSSL {
		certPEM, keyPEM, caPEM, err := n.readTLSFiles(listener)
		if err != nil {
			return nil, nil, fmt.Errorf("inter-broker TLS: %w", err)
		}
		if tlsCfg, err = auth.ClientTLS(certPEM, keyPEM, caPEM); err != nil {
			return nil, nil, fmt.Errorf("inter-broker TLS: %w", err)
		}
	}
	if protocol != config.ProtocolSASLPlaintext && protocol != config.ProtocolSASLSSL {
		return tlsCfg, nil, nil
	}
	user, file := cfg.String(config.InterBrokerSASLUsername), cfg.String(config.InterBrokerSASLPasswordFile)
	if user == "" || file == "" {
		return nil, nil, errors.New("the inter-broker listener uses SASL: set inter.broker.sasl.username and inter.broker.sasl.password.file")
	}
	password, err := vfs.ReadFile(n.opts.FS, file, maxPEMBytes)
	if err != nil {
		return nil, nil, fmt.Errorf("inter.broker.sasl.password.file: %w", err)
	}
	return tlsCfg, &peer.SASL{
		Mechanism: cfg.String(config.SASLMechanismInterBrokerProtocol), User: user,
		Password: strings.TrimRight(string(password), "\r\n"),
	}, nil
}

// interBrokerEndpoint is where followers reach broker b: its listener
// named inter.broker.listener.name, else (a broker registered before
// listeners had names, or a name it lacks) its first.
func interBrokerEndpoint(b *metadata.BrokerImage, name string) metadata.Listener {
	for _, l := range b.Listeners {
		if l.Name == name {
			return l
		}
	}
	return b.Listeners[0]
}

// dialOptions reads inter-broker credentials once per dial: a changed
// password file applies at the next reconnect, without a restart.
func (n *Node) dialOptions(_ context.Context, l metadata.Listener) (peer.Options, error) {
	tlsCfg, sasl, err := n.interBrokerOptions(l.Name, l.SecurityProtocol)
	if err != nil {
		return peer.Options{}, err
	}
	return peer.Options{
		ClientID:         fmt.Sprintf("sluice-replica-fetcher-%d", n.meta.NodeID),
		MaxResponseBytes: max(n.opts.Config.Int32("replica.fetch.response.max.bytes"), 0) + peer.DefaultMaxResponseBytes,
		TLS:              tlsCfg, SASL: sasl,
	}, nil
}

// interBrokerPeerOptions are the options of broker-to-broker connections
// whose target is found per call (the transaction verifier): this node's
// own inter-broker listener says the protocol, since brokers of a
// cluster share listener names and protocols. Missing credentials are
// logged and the options left plain: the calls then fail against a
// secured listener, each with its error.
func (n *Node) interBrokerPeerOptions(clientID string) peer.Options {
	opts := peer.Options{ClientID: clientID}
	listeners, err := n.opts.Config.ClientListeners()
	if err != nil {
		return opts
	}
	name := n.opts.Config.InterBrokerListener()
	for _, l := range listeners {
		if l.Name != name {
			continue
		}
		tlsCfg, sasl, err := n.interBrokerOptions(l.Name, l.SecurityProtocol)
		if err != nil {
			n.log.Warn("inter-broker credentials", "listener", l.Name, "err", err)
			return opts
		}
		opts.TLS, opts.SASL = tlsCfg, sasl
	}
	return opts
}
