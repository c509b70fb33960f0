package auth

import (
	"context"
	"sync"
)

// Session is the security state of one client connection: which listener
// it came in on, whether it has authenticated, as whom, and until when.
// The network server creates it at accept (with the TLS principal, if
// any); the SASL handlers move it along; every request reads it.
//
// Requests of a connection are served one at a time, so only one goroutine
// changes a Session; the mutex is for the network server's handshake
// timer, which reads it from another.
type Session struct {
	Listener         string
	SecurityProtocol string // PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
	// Mechanisms are the SASL mechanisms this listener offers.
	Mechanisms []string
	// ReauthMs is connections.max.reauth.ms for this listener; 0: sessions
	// do not expire.
	ReauthMs int64

	mu              sync.Mutex
	principal       Principal
	authenticated   bool
	mechanism       string   // chosen by SaslHandshake
	exchange        Exchange // the SASL exchange in progress
	rawTokens       bool     // SaslHandshake v0: tokens follow as raw frames
	expiresAtMs     int64    // 0: never
	authenticatedCh chan struct{}
}

// NewSession returns the state of a new connection. A PLAINTEXT or SSL
// connection is authenticated at once, as principal (Anonymous, or the
// TLS client certificate's); a SASL one is not, until SaslAuthenticate.
func NewSession(listener, protocol string, principal Principal) *Session {
	s := &Session{Listener: listener, SecurityProtocol: protocol, principal: principal, authenticatedCh: authenticatedAtStart}
	if s.UsesSASL() {
		s.authenticatedCh = make(chan struct{})
	} else {
		s.authenticated = true
	}
	return s
}

// authenticatedAtStart is the Authenticated channel of every session
// that needs no SASL: already closed, and shared, since every idle
// connection holds its session.
var authenticatedAtStart = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// UsesSASL reports whether the listener authenticates with SASL.
func (s *Session) UsesSASL() bool {
	return s.SecurityProtocol == "SASL_PLAINTEXT" || s.SecurityProtocol == "SASL_SSL"
}

// Authenticated is closed once the connection has first authenticated.
func (s *Session) Authenticated() <-chan struct{} { return s.authenticatedCh }

// IsAuthenticated reports whether the connection has authenticated.
func (s *Session) IsAuthenticated() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authenticated
}

// Principal is who the connection authenticated as.
func (s *Session) Principal() Principal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.principal
}

// SetCertificatePrincipal sets the principal of an SSL connection, from
// its client certificate, once the TLS handshake is done and before any
// request is read. SASL listeners ignore it: their principal is the SASL
// one, as in Kafka.
func (s *Session) SetCertificatePrincipal(p Principal) {
	if s.UsesSASL() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.principal = p
}

// Expired reports whether a SASL session's lifetime (KIP-368) is over.
func (s *Session) Expired(nowMs int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiresAtMs > 0 && nowMs >= s.expiresAtMs
}

// ExpectsRawToken reports whether the next frame is a raw SASL token: after
// a SaslHandshake v0, until the exchange is done.
func (s *Session) ExpectsRawToken() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rawTokens && s.exchange != nil
}

// Handshake records the mechanism SaslHandshake chose and starts its
// exchange. raw is the v0 flow, where tokens follow as raw frames.
func (s *Session) Handshake(mechanism string, raw bool, store CredentialStore) error {
	ex, err := NewExchange(mechanism, s.Mechanisms, store)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.authenticated && s.mechanism != mechanism {
		// KIP-368: a re-authentication must use the same mechanism.
		return ErrUnsupportedMechanism
	}
	s.mechanism, s.exchange, s.rawTokens = mechanism, ex, raw
	return nil
}

// Authenticate feeds the client's token to the exchange SaslHandshake
// started. Once the exchange is done, the session is authenticated and
// lifetimeMs (0: none) is how long it lasts. A re-authentication as a
// different principal fails, as in Kafka.
func (s *Session) Authenticate(token []byte, nowMs int64) (challenge []byte, done bool, lifetimeMs int64, err error) {
	s.mu.Lock()
	ex := s.exchange
	s.mu.Unlock()
	if ex == nil {
		return nil, false, 0, ErrNoHandshake
	}
	challenge, done, err = ex.Step(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.exchange = nil
		return nil, false, 0, err
	}
	if !done {
		return challenge, false, 0, nil
	}
	p := ex.Principal()
	if s.authenticated && p != s.principal {
		s.exchange = nil
		return nil, false, 0, ErrPrincipalChanged
	}
	s.exchange, s.rawTokens = nil, false
	s.principal = p
	if s.ReauthMs > 0 {
		s.expiresAtMs = nowMs + s.ReauthMs
		lifetimeMs = s.ReauthMs
	}
	if !s.authenticated {
		s.authenticated = true
		close(s.authenticatedCh)
	}
	return challenge, true, lifetimeMs, nil
}

// ErrNoHandshake: SaslAuthenticate without a SaslHandshake before it.
// The edge answers ILLEGAL_SASL_STATE.
var ErrNoHandshake = &stateError{"SaslAuthenticate before SaslHandshake"}

// ErrPrincipalChanged: a re-authentication as someone else. The edge
// answers SASL_AUTHENTICATION_FAILED and closes the connection.
var ErrPrincipalChanged = &stateError{"re-authentication as a different principal"}

type stateError struct{ msg string }

func (e *stateError) Error() string { return e.msg }

// Is makes a principal change an authentication failure too.
func (e *stateError) Is(target error) bool {
	return e == ErrPrincipalChanged && target == ErrAuthenticationFailed
}

type sessionKey struct{}

// WithSession returns ctx carrying the connection's session.
func WithSession(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

// SessionFromContext returns the session ctx carries, nil when none (a
// request from a test or an internal caller, served as PLAINTEXT).
func SessionFromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(sessionKey{}).(*Session)
	return s
}
