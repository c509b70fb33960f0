package auth

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// TLS as Kafka's SSL listeners do it, from PEM files: TLS 1.2 at least,
// the client's certificate asked for per ssl.client.auth, and the
// principal of an SSL connection taken from that certificate's subject.

// ClientAuth values, ssl.client.auth's.
const (
	ClientAuthRequired  = "required"
	ClientAuthRequested = "requested"
	ClientAuthNone      = "none"
)

// ServerTLS builds a listener's TLS config. caPEM may be empty when
// clientAuth is none.
func ServerTLS(certPEM, keyPEM, caPEM []byte, clientAuth string) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ssl.certificate.location and ssl.key.location: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	switch clientAuth {
	case ClientAuthRequired:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	case ClientAuthRequested:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthNone, "":
		return cfg, nil
	default:
		return nil, fmt.Errorf("ssl.client.auth %q: want required, requested or none", clientAuth)
	}
	if cfg.ClientCAs, err = certPool(caPEM); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ClientTLS builds the config a broker (or the CLI) dials with: the
// server is checked against caPEM (the system roots when empty), and
// certPEM/keyPEM, when given, are presented for mutual TLS.
func ClientTLS(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caPEM) > 0 {
		pool, err := certPool(caPEM)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if len(certPEM) > 0 || len(keyPEM) > 0 {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("client certificate and key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// MutualTLS is both ends of a controller-to-controller connection: the
// same certificate serves and dials, and each side requires the other's.
func MutualTLS(certPEM, keyPEM, caPEM []byte) (server, client *tls.Config, err error) {
	if server, err = ServerTLS(certPEM, keyPEM, caPEM, ClientAuthRequired); err != nil {
		return nil, nil, err
	}
	if client, err = ClientTLS(certPEM, keyPEM, caPEM); err != nil {
		return nil, nil, err
	}
	return server, client, nil
}

func certPool(caPEM []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("ssl.ca.location: no PEM certificate in it")
	}
	return pool, nil
}

// SubjectDN is a certificate subject as Kafka's default principal builder
// writes it (Java's X500Principal.getName(), RFC 2253): the most specific
// attribute first, "CN=alice,OU=eng,O=example,C=US".
func SubjectDN(cert *x509.Certificate) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(cert.RawSubject, &seq); err != nil || len(rest) > 0 {
		return cert.Subject.String()
	}
	return seq.String()
}

// PrincipalRules are ssl.principal.mapping.rules: rules tried in order on
// the subject DN; the first whose pattern matches the whole DN gives the
// principal name; DEFAULT gives the DN itself.
type PrincipalRules []principalRule

type principalRule struct {
	isDefault   bool
	pattern     *regexp.Regexp
	replacement string
	caseChange  byte // 'L', 'U' or 0
}

// ParsePrincipalRules reads Kafka's syntax: "RULE:pattern/replacement/[LU],
// ..., DEFAULT", a slash inside pattern or replacement escaped as \/.
func ParsePrincipalRules(s string) (PrincipalRules, error) {
	var rules PrincipalRules
	rest := strings.TrimSpace(s)
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			rules = append(rules, principalRule{isDefault: true})
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			pattern, after, ok := cutUnescaped(rest[len("RULE:"):])
			if !ok {
				return nil, fmt.Errorf("ssl.principal.mapping.rules %q: rule without /replacement/", s)
			}
			replacement, after, ok := cutUnescaped(after)
			if !ok {
				return nil, fmt.Errorf("ssl.principal.mapping.rules %q: rule without a closing /", s)
			}
			re, err := regexp.Compile("^(?:" + pattern + ")$")
			if err != nil {
				return nil, fmt.Errorf("ssl.principal.mapping.rules: pattern %q: %w", pattern, err)
			}
			r := principalRule{pattern: re, replacement: replacement}
			if after != "" && (after[0] == 'L' || after[0] == 'U') {
				r.caseChange, after = after[0], after[1:]
			}
			rules = append(rules, r)
			rest = after
		default:
			return nil, fmt.Errorf("ssl.principal.mapping.rules %q: want RULE:pattern/replacement/[LU] or DEFAULT at %q", s, rest)
		}
		rest = strings.TrimLeft(rest, " ,\t\n")
	}
	return rules, nil
}

// cutUnescaped splits s at its first slash not preceded by a backslash, and
// unescapes \/ in the part before it.
func cutUnescaped(s string) (before, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == '/' {
			i++
			continue
		}
		if s[i] == '/' {
			return strings.ReplaceAll(s[:i], `\/`, "/"), s[i+1:], true
		}
	}
	return "", "", false
}

// Map returns the principal name for a subject DN: the first rule that
// matches, the DN itself when none does (or the rules are empty).
func (rules PrincipalRules) Map(dn string) string {
	for _, r := range rules {
		if r.isDefault {
			return dn
		}
		if !r.pattern.MatchString(dn) {
			continue
		}
		name := r.pattern.ReplaceAllString(dn, r.replacement)
		switch r.caseChange {
		case 'L':
			name = strings.ToLower(name)
		case 'U':
			name = strings.ToUpper(name)
		}
		return name
	}
	return dn
}

// CertificatePrincipal is the principal of a TLS connection: User:<name>
// from the client certificate's subject, Anonymous without one.
func CertificatePrincipal(state tls.ConnectionState, rules PrincipalRules) Principal {
	if len(state.PeerCertificates) == 0 {
		return Anonymous
	}
	return User(rules.Map(SubjectDN(state.PeerCertificates[0])))
}
