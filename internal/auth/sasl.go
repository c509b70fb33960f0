package auth

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// ErrAuthenticationFailed: the client's credentials did not check out.
// The edge answers SASL_AUTHENTICATION_FAILED and closes the connection.
var ErrAuthenticationFailed = errors.New("authentication failed")

// ErrUnsupportedMechanism: the client asked for a mechanism the listener
// does not offer. The edge answers UNSUPPORTED_SASL_MECHANISM.
var ErrUnsupportedMechanism = errors.New("unsupported SASL mechanism")

// FailureError is an authentication failure whose Message goes to the
// client and whose Cause only to the broker's log.
type FailureError struct {
	Message string
	Cause   error
}

func (e *FailureError) Error() string { return e.Message }

// Unwrap makes it an ErrAuthenticationFailed; the cause stays out of the
// chain so no client-facing text can include it.
func (e *FailureError) Unwrap() error { return ErrAuthenticationFailed }

// LogDetail is the failure with its cause, for the broker's log.
func LogDetail(err error) string {
	var f *FailureError
	if errors.As(err, &f) && f.Cause != nil {
		return err.Error() + ": " + f.Cause.Error()
	}
	return err.Error()
}

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
