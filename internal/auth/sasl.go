package auth

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/xdg-go/scram"
)

// ErrAuthenticationFailed: the client's credentials did not check out.
// The edge answers SASL_AUTHENTICATION_FAILED and closes the connection.
var ErrAuthenticationFailed = errors.New("authentication failed")

// ErrUnsupportedMechanism: the client asked for a mechanism the listener
// does not offer. The edge answers UNSUPPORTED_SASL_MECHANISM.
var ErrUnsupportedMechanism = errors.New("unsupported SASL mechanism")

// ScramCredential is a stored SCRAM credential, as the metadata log holds
// it (only derived keys, never the password).
type ScramCredential struct {
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int
}

// CredentialStore finds a user's SCRAM credential for a mechanism.
type CredentialStore interface {
	ScramCredential(user, mechanism string) (ScramCredential, bool)
}

// Exchange is the server side of one SASL authentication: Step takes the
// client's next token and returns the server's answer. Once done, the
// exchange's Principal is who authenticated. An error ends the exchange:
// the client failed (wrapping ErrAuthenticationFailed) or sent nonsense.
type Exchange interface {
	Step(token []byte) (challenge []byte, done bool, err error)
	Principal() Principal
}

// NewExchange starts a server exchange for mechanism, which must be one of
// enabled.
func NewExchange(mechanism string, enabled []string, store CredentialStore) (Exchange, error) {
	if !slices.Contains(enabled, mechanism) {
		return nil, fmt.Errorf("%w: %q (enabled: %v)", ErrUnsupportedMechanism, mechanism, enabled)
	}
	switch mechanism {
	case MechanismPlain:
		return &plainExchange{store: store}, nil
	case MechanismScramSHA256, MechanismScramSHA512:
		return newScramExchange(mechanism, store)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mechanism)
}

// plainExchange is RFC 4616: one token, authzid NUL user NUL password. The
// password is checked against the user's SCRAM credential (the strongest
// hash first), so PLAIN needs no second store of passwords.
type plainExchange struct {
	store     CredentialStore
	principal Principal
}

func (e *plainExchange) Step(token []byte) ([]byte, bool, error) {
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return nil, false, fmt.Errorf("%w: PLAIN token is not authzid NUL user NUL password", ErrAuthenticationFailed)
	}
	authzid, user, password := string(parts[0]), string(parts[1]), string(parts[2])
	if user == "" || (authzid != "" && authzid != user) {
		return nil, false, fmt.Errorf("%w: PLAIN authorization id %q differs from user %q", ErrAuthenticationFailed, authzid, user)
	}
	for _, mech := range []string{MechanismScramSHA512, MechanismScramSHA256} {
		c, ok := e.store.ScramCredential(user, mech)
		if !ok {
			continue
		}
		if CheckScramPassword(mech, password, c.Salt, c.StoredKey, c.Iterations) {
			e.principal = User(user)
			return nil, true, nil
		}
		break
	}
	return nil, false, fmt.Errorf("%w: Invalid username or password", ErrAuthenticationFailed)
}

func (e *plainExchange) Principal() Principal { return e.principal }

// scramExchange runs RFC 5802's two round trips with xdg-go/scram.
type scramExchange struct {
	mechanism string
	conv      *scram.ServerConversation
	principal Principal
}

func newScramExchange(mechanism string, store CredentialStore) (Exchange, error) {
	h := scram.SHA256
	if mechanism == MechanismScramSHA512 {
		h = scram.SHA512
	}
	server, err := h.NewServer(func(user string) (scram.StoredCredentials, error) {
		c, ok := store.ScramCredential(user, mechanism)
		if !ok {
			return scram.StoredCredentials{}, fmt.Errorf("user %q has no %s credential", user, mechanism)
		}
		return scram.StoredCredentials{
			KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
			StoredKey:  c.StoredKey, ServerKey: c.ServerKey,
		}, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s server: %w", mechanism, err)
	}
	return &scramExchange{mechanism: mechanism, conv: server.NewConversation()}, nil
}

func (e *scramExchange) Step(token []byte) ([]byte, bool, error) {
	out, err := e.conv.Step(string(token))
	if err != nil {
		// Kafka's message; what failed (unknown user, wrong proof) is
		// not told to the client, so it cannot probe for user names.
		return nil, false, fmt.Errorf("%w during authentication due to invalid credentials with SASL mechanism %s",
			ErrAuthenticationFailed, e.mechanism)
	}
	if !e.conv.Done() {
		return []byte(out), false, nil
	}
	if !e.conv.Valid() {
		return nil, false, fmt.Errorf("%w with SASL mechanism %s", ErrAuthenticationFailed, e.mechanism)
	}
	if a := e.conv.AuthzID(); a != "" && a != e.conv.Username() {
		return nil, false, fmt.Errorf("%w: authorization id %q differs from user %q", ErrAuthenticationFailed, a, e.conv.Username())
	}
	e.principal = User(e.conv.Username())
	return []byte(out), true, nil
}

func (e *scramExchange) Principal() Principal { return e.principal }
