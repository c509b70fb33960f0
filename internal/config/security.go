package config

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Security keys: listeners by name and protocol, TLS from PEM files, SASL.
// Kafka's names; the few Sluice-only keys say so in their Doc.
const (
	ListenerSecurityProtocolMap      = "listener.security.protocol.map"
	InterBrokerListenerName          = "inter.broker.listener.name"
	SSLCertificateLocation           = "ssl.certificate.location"
	SSLKeyLocation                   = "ssl.key.location"
	SSLCALocation                    = "ssl.ca.location"
	SSLClientAuth                    = "ssl.client.auth"
	SSLPrincipalMappingRules         = "ssl.principal.mapping.rules"
	SASLEnabledMechanisms            = "sasl.enabled.mechanisms"
	SASLMechanismInterBrokerProtocol = "sasl.mechanism.inter.broker.protocol"
	SASLServerMaxReceiveSize         = "sasl.server.max.receive.size"
	SASLHandshakeTimeoutMs           = "sasl.handshake.timeout.ms"
	ConnectionsMaxReauthMs           = "connections.max.reauth.ms"
	InterBrokerSASLUsername          = "inter.broker.sasl.username"
	InterBrokerSASLPasswordFile      = "inter.broker.sasl.password.file"
	ControllerListenerSecurity       = "controller.listener.security.protocol"
)

// Security protocols, as Kafka names them.
const (
	ProtocolPlaintext     = "PLAINTEXT"
	ProtocolSSL           = "SSL"
	ProtocolSASLPlaintext = "SASL_PLAINTEXT"
	ProtocolSASLSSL       = "SASL_SSL"
)

// Values of ssl.client.auth.
const (
	ClientAuthRequired  = "required"
	ClientAuthRequested = "requested"
	ClientAuthNone      = "none"
)

// controllerListenerName is the name Kafka files give their controller
// listener. Sluice's controller listens on controller.listener, so such an
// entry in listeners is skipped with a warning rather than served to clients.
const controllerListenerName = "CONTROLLER"

// listenerOverridable are the keys a listener may set for itself as
// listener.name.<name>.<key>, as Kafka allows for its ssl.* and sasl.* keys.
var listenerOverridable = []string{
	SSLCertificateLocation, SSLKeyLocation, SSLCALocation, SSLClientAuth, SSLPrincipalMappingRules,
	SASLEnabledMechanisms, ConnectionsMaxReauthMs,
}

// securityConfigs are the security keys' definitions, added to
// BrokerConfigs in init so that the table there keeps its own order.
var securityConfigs = []Def{
	{
		Name: ConnectionsMaxReauthMs, Type: TypeLong, Default: "0", Ranges: atLeast(0, maxLong),
		Doc: "KIP-368: the longest a SASL session lasts before the client must re-authenticate on the same connection; " +
			"a connection that sends any other request after its session expired is closed. 0 means sessions never expire.",
	},
	{
		Name: ControllerListenerSecurity, Type: TypeString, Default: ProtocolPlaintext,
		Values: []string{ProtocolPlaintext, ProtocolSSL},
		Doc: "Sluice only: the protocol of the metadata quorum's listener (controller.listener) and of every connection to it. " +
			"SSL uses ssl.certificate.location, ssl.key.location and ssl.ca.location on both ends and requires the peer's certificate (mutual TLS).",
	},
	{
		Name: InterBrokerListenerName, Type: TypeString,
		Doc: "The listener followers fetch from, by name: a leader is dialled at the address it registered for this listener. " +
			"Empty: the listener named PLAINTEXT, else the first one.",
	},
	{
		Name: InterBrokerSASLPasswordFile, Type: TypeString,
		Doc: "Sluice only: a file holding the password of inter.broker.sasl.username (trailing newline ignored).",
	},
	{
		Name: InterBrokerSASLUsername, Type: TypeString,
		Doc: "Sluice only: the SCRAM user this broker authenticates as when the inter-broker listener uses SASL " +
			"(Kafka puts it in a JAAS file); its credential must exist in the metadata log (sluice user create).",
	},
	{
		Name: ListenerSecurityProtocolMap, Type: TypeList,
		Default: "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
		Doc:     "Listener name to security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), as NAME:PROTOCOL,...",
	},
	{
		Name: SASLEnabledMechanisms, Type: TypeList, Default: "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		Values: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
		Doc: "The SASL mechanisms SASL listeners offer. Kafka's default is GSSAPI, which Sluice does not have; " +
			"PLAIN checks the password against the SCRAM credentials, so it needs no other store.",
	},
	{
		Name: SASLHandshakeTimeoutMs, Type: TypeInt, Default: "10000", Ranges: atLeast(1, maxInt),
		Doc: "Sluice only: how long a connection to a SASL listener may take to authenticate (and a TLS listener to finish its handshake) before it is closed.",
	},
	{
		Name: SASLMechanismInterBrokerProtocol, Type: TypeString, Default: "SCRAM-SHA-512",
		Values: []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"},
		Doc:    "The mechanism a follower authenticates with when the inter-broker listener uses SASL. Kafka's default is GSSAPI.",
	},
	{
		Name: SASLServerMaxReceiveSize, Type: TypeInt, Default: "524288", Ranges: atLeast(1, maxInt),
		Doc: "The largest request frame read before a connection has authenticated: bounds what an unauthenticated client can make the broker read.",
	},
	{
		Name: SSLCALocation, Type: TypeString,
		Doc: "PEM file of the certificate authorities that client (and peer) certificates are checked against; " +
			"also what a follower checks its leader's certificate with. Override per listener with listener.name.<name>.ssl.ca.location.",
	},
	{
		Name: SSLCertificateLocation, Type: TypeString,
		Doc: "PEM file of this broker's certificate (chain) for SSL and SASL_SSL listeners. Override per listener with listener.name.<name>.ssl.certificate.location.",
	},
	{
		Name: SSLClientAuth, Type: TypeString, Default: ClientAuthNone,
		Values: []string{ClientAuthRequired, ClientAuthRequested, ClientAuthNone},
		Doc: "Whether SSL listeners ask for a client certificate: required refuses a client without a valid one, requested checks one if given. " +
			"The principal is the certificate's subject (User:CN=...,OU=...). A SASL_SSL listener asks only if its own listener.name.<name>.ssl.client.auth says so, as in Kafka.",
	},
	{
		Name: SSLKeyLocation, Type: TypeString,
		Doc: "PEM file of the private key of ssl.certificate.location (unencrypted).",
	},
	{
		Name: SSLPrincipalMappingRules, Type: TypeString, Default: "DEFAULT",
		Doc: "How a client certificate's subject becomes a principal name: RULE:pattern/replacement/[LU] entries tried in order, " +
			"then DEFAULT (the full distinguished name), as Kafka's.",
	},
}

func init() {
	BrokerConfigs = append(BrokerConfigs, securityConfigs...)
	slices.SortFunc(BrokerConfigs, func(a, b Def) int { return strings.Compare(a.Name, b.Name) })
	brokerByName = indexDefs(BrokerConfigs, func(d *Def) string { return d.Name })
}

// ListenerConfig is one client listener: where it binds, what it speaks,
// and what clients are told.
type ListenerConfig struct {
	Name             string
	SecurityProtocol string
	Host             string // empty: every interface
	Port             int    // 0: a free port
	// AdvertisedHost and AdvertisedPort are what Metadata tells clients
	// that connected to this listener; port 0 means the bound port.
	AdvertisedHost string
	AdvertisedPort int
}

// ClientListeners returns the listeners that serve Kafka clients, in the
// order of listeners. Load has checked them.
func (b *Broker) ClientListeners() ([]ListenerConfig, error) {
	out, _, err := b.clientListeners()
	return out, err
}

// InterBrokerListener is the name of the listener followers dial.
func (b *Broker) InterBrokerListener() string {
	if name := b.values[InterBrokerListenerName]; name != "" {
		return strings.ToUpper(name)
	}
	listeners, _, err := b.clientListeners()
	if err != nil || len(listeners) == 0 {
		return ProtocolPlaintext
	}
	for _, l := range listeners {
		if l.Name == ProtocolPlaintext {
			return l.Name
		}
	}
	return listeners[0].Name
}

// ListenerValue is key's value for one listener: listener.name.<name>.<key>
// when set, else key's own.
func (b *Broker) ListenerValue(listener, key string) string {
	if v, ok := b.listenerOverrides[listenerOverrideKey(listener, key)]; ok {
		return v
	}
	return b.String(key)
}

// ClientAuth is a listener's ssl.client.auth. On a SASL_SSL listener only
// its own listener.name.<name>.ssl.client.auth counts, as in Kafka
// (KIP-684): the client authenticates with SASL there, and a broker-wide
// ssl.client.auth=required meant for SSL listeners must not make SASL
// clients present certificates too.
func (b *Broker) ClientAuth(l ListenerConfig) string {
	if l.SecurityProtocol == ProtocolSASLSSL {
		if v, ok := b.listenerOverrides[listenerOverrideKey(l.Name, SSLClientAuth)]; ok {
			return v
		}
		return ClientAuthNone
	}
	return b.ListenerValue(l.Name, SSLClientAuth)
}

func listenerOverrideKey(listener, key string) string {
	return "listener.name." + strings.ToLower(listener) + "." + key
}

// takeListenerOverride keeps a listener.name.<name>.<key> setting; false
// when key is not one of those a listener may override.
func (b *Broker) takeListenerOverride(s setting) bool {
	rest, ok := strings.CutPrefix(s.key, "listener.name.")
	if !ok {
		return false
	}
	name, key, ok := strings.Cut(rest, ".")
	if !ok || name == "" || !slices.Contains(listenerOverridable, key) {
		return false
	}
	if b.listenerOverrides == nil {
		b.listenerOverrides = map[string]string{}
	}
	b.listenerOverrides[listenerOverrideKey(name, key)] = s.value
	return true
}

// protocolMap reads listener.security.protocol.map.
func (b *Broker) protocolMap() (map[string]string, error) {
	m := map[string]string{}
	for _, item := range b.List(ListenerSecurityProtocolMap) {
		name, proto, ok := strings.Cut(item, ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not NAME:PROTOCOL", item)
		}
		if !slices.Contains([]string{ProtocolPlaintext, ProtocolSSL, ProtocolSASLPlaintext, ProtocolSASLSSL}, proto) {
			return nil, fmt.Errorf("%q: protocol %s is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", item, proto)
		}
		m[name] = proto
	}
	return m, nil
}

// clientListeners resolves listeners, the protocol map and
// advertised.listeners into the client listeners, with warnings for the
// entries skipped.
func (b *Broker) clientListeners() (out []ListenerConfig, warnings []string, err error) {
	listeners, err := parseListeners(b.values[Listeners])
	if err != nil {
		return nil, nil, err
	}
	protocols, err := b.protocolMap()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ListenerSecurityProtocolMap, err)
	}
	for _, l := range listeners {
		proto, ok := protocols[l.name]
		if l.name == controllerListenerName {
			warnings = append(warnings, fmt.Sprintf("config: listener %s://%s (from %s) ignored: Sluice's controller listens on %s",
				l.name, net.JoinHostPort(l.host, strconv.Itoa(l.port)), b.origin(Listeners), ControllerListener))
			continue
		}
		if !ok {
			return nil, nil, fmt.Errorf("listener %s has no protocol in %s", l.name, ListenerSecurityProtocolMap)
		}
		host := l.host
		if isAnyHost(host) {
			host = "localhost"
		}
		out = append(out, ListenerConfig{Name: l.name, SecurityProtocol: proto, Host: l.host, Port: l.port, AdvertisedHost: host, AdvertisedPort: l.port})
	}
	if len(out) == 0 {
		return nil, nil, errors.New("no client listener")
	}
	if err := b.applyAdvertised(out); err != nil {
		return nil, nil, err
	}
	return out, warnings, nil
}

// applyAdvertised sets the advertised address of each listener that
// advertised.listeners names; the others advertise their own.
func (b *Broker) applyAdvertised(out []ListenerConfig) error {
	v := b.values[AdvertisedListeners]
	if v == "" {
		return nil
	}
	advertised, err := parseListeners(v)
	if err != nil {
		return fmt.Errorf("%s %q: %w", AdvertisedListeners, v, err)
	}
	for _, a := range advertised {
		i := slices.IndexFunc(out, func(l ListenerConfig) bool { return l.Name == a.name })
		if i < 0 {
			return fmt.Errorf("%s: %s is not one of listeners", AdvertisedListeners, a.name)
		}
		if isAnyHost(a.host) || a.port == 0 {
			return fmt.Errorf("%s: %s is not an address a client can connect to", AdvertisedListeners, net.JoinHostPort(a.host, strconv.Itoa(a.port)))
		}
		out[i].AdvertisedHost, out[i].AdvertisedPort = a.host, a.port
	}
	return nil
}

// checkSecurity checks what the security keys need of each other: a TLS
// listener needs a certificate and key, client authentication a CA, and
// the inter-broker listener must exist.
func (b *Broker) checkSecurity(listeners []ListenerConfig) error {
	for _, l := range listeners {
		tls := l.SecurityProtocol == ProtocolSSL || l.SecurityProtocol == ProtocolSASLSSL
		if tls && (b.ListenerValue(l.Name, SSLCertificateLocation) == "" || b.ListenerValue(l.Name, SSLKeyLocation) == "") {
			return b.invalid(Listeners, fmt.Sprintf("ssl.certificate.location and ssl.key.location set, since listener %s is %s", l.Name, l.SecurityProtocol))
		}
		if tls && b.ClientAuth(l) != ClientAuthNone && b.ListenerValue(l.Name, SSLCALocation) == "" {
			return b.invalid(SSLClientAuth, fmt.Sprintf("ssl.ca.location set too, to check client certificates of listener %s", l.Name))
		}
	}
	if name := b.values[InterBrokerListenerName]; name != "" &&
		!slices.ContainsFunc(listeners, func(l ListenerConfig) bool { return strings.EqualFold(l.Name, name) }) {
		return b.invalid(InterBrokerListenerName, "the name of one of listeners")
	}
	if b.values[ControllerListenerSecurity] == ProtocolSSL &&
		(b.values[SSLCertificateLocation] == "" || b.values[SSLKeyLocation] == "" || b.values[SSLCALocation] == "") {
		return b.invalid(ControllerListenerSecurity, "ssl.certificate.location, ssl.key.location and ssl.ca.location set for SSL between controllers")
	}
	return nil
}
