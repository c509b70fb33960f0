package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/vfs"
)

// passwordEnv holds the SASL password when --password-file is not given.
// There is no --password flag on purpose: a flag's value is in the process
// list for every user of the machine to read.
const passwordEnv = "SLUICE_PASSWORD"

// securityFlags are the client flags that secure the connection: TLS (with
// a CA, and a certificate for mutual TLS) and SASL.
type securityFlags struct {
	tls           bool
	tlsCA         string
	tlsCert       string
	tlsKey        string
	saslMechanism string
	user          string
	passwordFile  string
}

func (s *securityFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&s.tls, "tls", false, "connect with TLS (implied by --tls-ca, --tls-cert)")
	fs.StringVar(&s.tlsCA, "tls-ca", "", "PEM file of the CA that signed the brokers' certificates (default: the system's)")
	fs.StringVar(&s.tlsCert, "tls-cert", "", "PEM client certificate, for brokers with ssl.client.auth (mutual TLS)")
	fs.StringVar(&s.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&s.saslMechanism, "sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fs.StringVar(&s.user, "user", "", "SASL user name")
	fs.StringVar(&s.passwordFile, "password-file", "", "file holding the SASL password (default $"+passwordEnv+")")
}

// securityOpts turns the flags, over the profile's or --config-file's
// settings, into client options. A flag wins over a setting.
func (e *clientEnv) securityOpts(settings clientSettings) ([]kgo.Opt, error) {
	s := e.security
	protocol := strings.ToUpper(settings.SecurityProtocol)
	useTLS := s.tls || s.tlsCA != "" || s.tlsCert != "" || protocol == "SSL" || protocol == "SASL_SSL"
	mechanism := firstNonEmpty(s.saslMechanism, settings.SASLMechanism)
	if mechanism == "" && (protocol == "SASL_PLAINTEXT" || protocol == "SASL_SSL") {
		return nil, usageErrorf("security.protocol %s needs a SASL mechanism (--sasl-mechanism or sasl.mechanisms)", protocol)
	}
	var opts []kgo.Opt
	if useTLS {
		cfg, err := clientTLS(firstNonEmpty(s.tlsCA, settings.SSLCALocation), firstNonEmpty(s.tlsCert, settings.SSLCertificateLocation),
			firstNonEmpty(s.tlsKey, settings.SSLKeyLocation))
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	if mechanism == "" {
		return opts, nil
	}
	user := firstNonEmpty(s.user, settings.SASLUsername)
	password, err := e.password(settings)
	if err != nil {
		return nil, err
	}
	if user == "" || password == "" {
		return nil, usageErrorf("--sasl-mechanism %s needs --user and a password (--password-file or $%s)", mechanism, passwordEnv)
	}
	switch strings.ToUpper(mechanism) {
	case auth.MechanismPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: user, Pass: password}.AsMechanism()))
	case auth.MechanismScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha256Mechanism()))
	case auth.MechanismScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: user, Pass: password}.AsSha512Mechanism()))
	default:
		return nil, usageErrorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
	}
	return opts, nil
}

// password is --password-file's content, else $SLUICE_PASSWORD, else the
// profile's or -F file's sasl.password.file, else its sasl.password (a
// kcat -F file keeps it there): what is typed for this command wins over
// what is stored.
func (e *clientEnv) password(settings clientSettings) (string, error) {
	if e.security.passwordFile != "" {
		return readPasswordFile(e.security.passwordFile)
	}
	if v := os.Getenv(passwordEnv); v != "" {
		return v, nil
	}
	if settings.SASLPasswordFile != "" {
		return readPasswordFile(settings.SASLPasswordFile)
	}
	return settings.SASLPassword, nil
}

// readPasswordFile reads a password, without its trailing newline.
func readPasswordFile(path string) (string, error) {
	b, err := vfs.ReadFile(vfs.OS(), path, maxSettingsFile)
	if err != nil {
		return "", fmt.Errorf("password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func clientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	read := func(what, path string) ([]byte, error) {
		if path == "" {
			return nil, nil
		}
		b, err := vfs.ReadFile(vfs.OS(), path, maxSettingsFile)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		return b, nil
	}
	caPEM, err := read("--tls-ca", caFile)
	if err != nil {
		return nil, err
	}
	certPEM, err := read("--tls-cert", certFile)
	if err != nil {
		return nil, err
	}
	keyPEM, err := read("--tls-key", keyFile)
	if err != nil {
		return nil, err
	}
	cfg, err := auth.ClientTLS(certPEM, keyPEM, caPEM)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return cfg, nil
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

// settings are the flags as a profile keeps them: the password by its
// file's path (never the password itself), the protocol spelled out as
// librdkafka's security.protocol.
func (s *securityFlags) settings(brokers string) (clientSettings, error) {
	out := clientSettings{
		Brokers: brokers, SASLMechanism: strings.ToUpper(s.saslMechanism), SASLUsername: s.user, SASLPasswordFile: s.passwordFile,
		SSLCALocation: s.tlsCA, SSLCertificateLocation: s.tlsCert, SSLKeyLocation: s.tlsKey,
	}
	useTLS := s.tls || s.tlsCA != "" || s.tlsCert != ""
	switch {
	case out.SASLMechanism != "" && useTLS:
		out.SecurityProtocol = "SASL_SSL"
	case out.SASLMechanism != "":
		out.SecurityProtocol = "SASL_PLAINTEXT"
	case useTLS:
		out.SecurityProtocol = "SSL"
	}
	if out.SASLMechanism != "" && out.SASLMechanism != auth.MechanismPlain && out.SASLMechanism != auth.MechanismScramSHA256 &&
		out.SASLMechanism != auth.MechanismScramSHA512 {
		return out, usageErrorf("--sasl-mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.saslMechanism)
	}
	if out.SASLMechanism != "" && s.user == "" {
		return out, usageErrorf("--sasl-mechanism needs --user")
	}
	return out, nil
}
