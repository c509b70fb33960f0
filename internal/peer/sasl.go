package peer

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/xdg-go/scram"

	"github.com/sluicelog/sluice/internal/auth"
)

// SASL is how a broker authenticates to another broker's SASL listener
// (sasl.mechanism.inter.broker.protocol, inter.broker.sasl.username).
type SASL struct {
	Mechanism string // PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	User      string
	Password  string
}

// reauthShare is the part of the session lifetime after which the
// connection authenticates again: early enough that a slow fetch does not
// carry it past the expiry, as Kafka's clients re-authenticate at 85-95%.
const reauthShare = 0.8

// authenticate runs SaslHandshake v1 and SaslAuthenticate v1 on the
// connection; c.mu is held (or the connection is not shared yet).
func (c *Conn) authenticate(ctx context.Context) error {
	s := c.opts.SASL
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, s.Mechanism
	resp, err := c.roundTrip(ctx, hs)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
		return fmt.Errorf("peer %s: SaslHandshake %s: %w", c.addr, s.Mechanism, err)
	}
	step, err := saslClient(s)
	if err != nil {
		return fmt.Errorf("peer %s: %w", c.addr, err)
	}
	var challenge []byte
	for {
		token, done, err := step(challenge)
		if err != nil {
			return fmt.Errorf("peer %s: SASL %s: %w", c.addr, s.Mechanism, err)
		}
		if done {
			return nil
		}
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 1, token
		resp, err := c.roundTrip(ctx, req)
		if err != nil {
			return err
		}
		ar := resp.(*kmsg.SASLAuthenticateResponse)
		if err := kerr.ErrorForCode(ar.ErrorCode); err != nil {
			msg := ""
			if ar.ErrorMessage != nil {
				msg = *ar.ErrorMessage
			}
			return fmt.Errorf("peer %s: SaslAuthenticate as %s: %w: %s", c.addr, s.User, err, msg)
		}
		if ar.SessionLifetimeMillis > 0 {
			c.reauthAt = time.Now().Add(time.Duration(float64(ar.SessionLifetimeMillis)*reauthShare) * time.Millisecond)
		} else {
			c.reauthAt = time.Time{}
		}
		challenge = ar.SASLAuthBytes
	}
}

// saslClient returns the client side of a mechanism as a step function:
// given the server's last challenge (nil at first), the next token, or
// done once the server's final message checked out.
func saslClient(s *SASL) (func([]byte) ([]byte, bool, error), error) {
	switch s.Mechanism {
	case auth.MechanismPlain:
		sent := false
		return func([]byte) ([]byte, bool, error) {
			if sent {
				return nil, true, nil
			}
			sent = true
			return []byte("\x00" + s.User + "\x00" + s.Password), false, nil
		}, nil
	case auth.MechanismScramSHA256, auth.MechanismScramSHA512:
		h := scram.SHA256
		if s.Mechanism == auth.MechanismScramSHA512 {
			h = scram.SHA512
		}
		client, err := h.NewClient(s.User, s.Password, "")
		if err != nil {
			return nil, fmt.Errorf("SASL %s client: %w", s.Mechanism, err)
		}
		conv := client.NewConversation()
		return func(challenge []byte) ([]byte, bool, error) {
			out, err := conv.Step(string(challenge))
			switch {
			case err != nil:
				return nil, false, err
			case !conv.Done():
				return []byte(out), false, nil
			case !conv.Valid():
				return nil, false, fmt.Errorf("the server's SCRAM signature does not check out")
			}
			return nil, true, nil
		}, nil
	}
	return nil, fmt.Errorf("SASL mechanism %q", s.Mechanism)
}
