package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// SaslHandshake v0-1 picks the SASL mechanism of a connection to a SASL
// listener. v0 is the flow before KIP-152, which kafka-python and old
// librdkafka still use: the tokens then follow as raw size-prefixed frames,
// with no request header (Server.Serve routes them). v1 tokens come in
// SaslAuthenticate. librdkafka 2.0 fails SASL unless v0 is in the range.
//
// Kafka's answers: a mechanism the listener does not offer gets
// UNSUPPORTED_SASL_MECHANISM with the ones it does; a handshake on a
// listener without SASL, or a v0 handshake to re-authenticate (KIP-368
// needs v1), gets ILLEGAL_SASL_STATE.
var saslHandshakeHandler = handler{key: 17, minVersion: 0, maxVersion: 1, serve: serveSaslHandshake}

func serveSaslHandshake(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	sess := auth.SessionFromContext(ctx)
	if sess == nil || !sess.UsesSASL() {
		resp.ErrorCode = errorCode(errIllegalSaslState)
		return resp, nil
	}
	resp.SupportedMechanisms = sess.Mechanisms
	if sess.IsAuthenticated() && req.Version == 0 {
		resp.ErrorCode = errorCode(errIllegalSaslState)
		return resp, closeAfterResponse(fmt.Errorf("%w: re-authentication needs SaslHandshake v1", errIllegalSaslState))
	}
	err := sess.Handshake(req.Mechanism, req.Version == 0, credentialStore{b})
	resp.ErrorCode = errorCode(err)
	if errors.Is(err, auth.ErrUnsupportedMechanism) {
		// Kafka closes after telling the client what it could have used.
		return resp, closeAfterResponse(err)
	}
	return resp, nil
}

// errIllegalSaslState: a SASL request out of order (or on a listener
// without SASL). Kafka: ILLEGAL_SASL_STATE.
var errIllegalSaslState = errors.New("illegal SASL state")

// credentialStore reads SCRAM credentials from the newest metadata image,
// so a credential altered through AlterUserScramCredentials applies to the
// next authentication on every broker.
type credentialStore struct{ b *Broker }

func (c credentialStore) ScramCredential(user, mechanism string) (auth.ScramCredential, bool) {
	m, ok := scramMechanismByName(mechanism)
	if !ok {
		return auth.ScramCredential{}, false
	}
	cred, ok := c.b.Control.Image().ScramCredential(user, m)
	if !ok {
		return auth.ScramCredential{}, false
	}
	return auth.ScramCredential{Salt: cred.Salt, StoredKey: cred.StoredKey, ServerKey: cred.ServerKey, Iterations: int(cred.Iterations)}, true
}
