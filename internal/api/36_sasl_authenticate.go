package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/wire"
)

// SaslAuthenticate v0-2 carries one SASL token each way (KIP-152). v1 adds
// the session lifetime (KIP-368): connections.max.reauth.ms, after which
// the client must authenticate again on the same connection (a
// SaslHandshake v1 and SaslAuthenticate) or be disconnected at its next
// request. A failed authentication answers SASL_AUTHENTICATION_FAILED with
// Kafka's message, then closes the connection.
var saslAuthenticateHandler = handler{key: 36, minVersion: 0, maxVersion: 2, serve: serveSaslAuthenticate}

func serveSaslAuthenticate(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	sess := auth.SessionFromContext(ctx)
	if sess == nil || !sess.UsesSASL() || sess.ExpectsRawToken() {
		resp.ErrorCode = errorCode(errIllegalSaslState)
		return resp, closeAfterResponse(errIllegalSaslState)
	}
	challenge, _, lifetimeMs, err := sess.Authenticate(req.SASLAuthBytes, fetchClock(b).Now().UnixMilli())
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		b.Logger.Info("SASL authentication failed; closing the connection",
			"client", r.ClientAddr, "listener", sess.Listener, "err", auth.LogDetail(err))
		return resp, closeAfterResponse(err)
	}
	resp.SASLAuthBytes = challenge
	resp.SessionLifetimeMillis = lifetimeMs
	return resp, nil
}

// serveRawToken answers a raw SASL token of the SaslHandshake v0 flow with
// a raw frame. A failure closes the connection without an answer, as Kafka
// does in that flow: there is no response format to put an error in.
func (s *Server) serveRawToken(sess *auth.Session, clientAddr string, frame []byte) (wire.Response, error) {
	challenge, _, _, err := sess.Authenticate(frame, fetchClock(s.broker).Now().UnixMilli())
	if err != nil {
		s.broker.Logger.Info("SASL authentication failed; closing the connection",
			"client", clientAddr, "listener", sess.Listener, "err", auth.LogDetail(err))
		return nil, fmt.Errorf("SASL (SaslHandshake v0 flow): %w", err)
	}
	out := make([]byte, 4+len(challenge))
	out[0], out[1], out[2], out[3] = byte(len(challenge)>>24), byte(len(challenge)>>16), byte(len(challenge)>>8), byte(len(challenge))
	copy(out[4:], challenge)
	return wire.Frame(out), nil
}

// checkSaslState decides whether a request may be served on its
// connection: before authentication only ApiVersions and the SASL requests
// are, and after a session expired (KIP-368) only re-authentication is.
// Anything else closes the connection, as Kafka does.
func (s *Server) checkSaslState(sess *auth.Session, key int16, clientAddr string) error {
	if sess == nil || !sess.UsesSASL() || key == apiVersionsHandler.key ||
		key == saslHandshakeHandler.key || key == saslAuthenticateHandler.key {
		return nil
	}
	if !sess.IsAuthenticated() {
		return fmt.Errorf("%w: %s before SASL authentication", errIllegalSaslState, kmsg.NameForKey(key))
	}
	if sess.Expired(fetchClock(s.broker).Now().UnixMilli()) {
		s.broker.Logger.Info("closing connection: SASL session expired without re-authentication (connections.max.reauth.ms)",
			"client", clientAddr, "listener", sess.Listener, "principal", sess.Principal().String())
		return fmt.Errorf("%w: %s after the SASL session expired", errIllegalSaslState, kmsg.NameForKey(key))
	}
	return nil
}

// errCloseAfterResponse marks a handler error that still has a response
// to send before the connection closes (a failed authentication).
var errCloseAfterResponse = errors.New("closing the connection after the response")

func closeAfterResponse(err error) error { return fmt.Errorf("%w: %w", errCloseAfterResponse, err) }
