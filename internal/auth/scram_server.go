package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scramExchange is the server side of RFC 5802's two round trips.
//
// It is Sluice's own rather than xdg-go/scram's server because real
// clients need Kafka's leniency: librdkafka (kcat, confluent-kafka, 2.0.2
// measured) sends its own nonce again in front of the combined one in the
// client-final message ("r=<client><client><server>"), which Kafka's
// ScramSaslServer accepts because it only checks that the nonce ends with
// the one it sent; xdg-go's server wants equality and refuses every
// librdkafka login. The proof is computed over the message as sent, so
// accepting the longer nonce weakens nothing: the client must still know
// the password and echo the server's nonce. xdg-go/scram stays the client
// (broker to broker, and in tests).
type scramExchange struct {
	mechanism string
	hash      func() hash.Hash
	store     CredentialStore

	step        int
	user        string
	gs2Header   string
	clientFirst string // client-first-message-bare
	serverFirst string
	nonce       string // client nonce + server nonce
	cred        ScramCredential
	principal   Principal
}

func newScramExchange(mechanism string, store CredentialStore) (Exchange, error) {
	h, ok := ScramHash(mechanism)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mechanism)
	}
	return &scramExchange{mechanism: mechanism, hash: h, store: store}, nil
}

// serverNonceBytes is the server's share of the nonce, before base64.
const serverNonceBytes = 24

func (e *scramExchange) Step(token []byte) ([]byte, bool, error) {
	e.step++
	switch e.step {
	case 1:
		out, err := e.clientFirstMessage(string(token))
		if err != nil {
			return nil, false, e.fail(err)
		}
		return []byte(out), false, nil
	case 2:
		out, err := e.clientFinalMessage(string(token))
		if err != nil {
			return nil, false, e.fail(err)
		}
		e.principal = User(e.user)
		return []byte(out), true, nil
	}
	return nil, false, e.fail(errors.New("exchange already finished"))
}

func (e *scramExchange) Principal() Principal { return e.principal }

// fail is Kafka's message for every failure; what failed (unknown user,
// wrong proof) stays in the cause, for the broker's log only, so a client
// cannot probe for user names.
func (e *scramExchange) fail(cause error) error {
	return &FailureError{
		Message: fmt.Sprintf("%v during authentication due to invalid credentials with SASL mechanism %s", ErrAuthenticationFailed, e.mechanism),
		Cause:   cause,
	}
}

// clientFirstMessage reads "gs2-header client-first-message-bare":
// "n,[a=authzid],n=user,r=nonce[,extensions]", and answers
// "r=nonce,s=salt,i=iterations".
func (e *scramExchange) clientFirstMessage(msg string) (string, error) {
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok || (flag != "n" && flag != "y") {
		return "", fmt.Errorf("client-first-message: channel binding flag %q (none is supported)", flag)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return "", errors.New("client-first-message: no gs2 header")
	}
	e.gs2Header, e.clientFirst = flag+","+authz+",", bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") || len(attrs[1]) == 2 {
		return "", fmt.Errorf("client-first-message: want n=user,r=nonce, got %q", bare)
	}
	if strings.HasPrefix(bare, "m=") {
		return "", errors.New("client-first-message: mandatory extension")
	}
	user, err := decodeSaslName(attrs[0][2:])
	if err != nil {
		return "", err
	}
	if a, hasAuthz := strings.CutPrefix(authz, "a="); hasAuthz {
		if name, err := decodeSaslName(a); err != nil || name != user {
			return "", fmt.Errorf("authorization id %q differs from user %q", a, user)
		}
	}
	cred, ok := e.store.ScramCredential(user, e.mechanism)
	if !ok {
		return "", fmt.Errorf("user %q has no %s credential", user, e.mechanism)
	}
	random := make([]byte, serverNonceBytes)
	_, _ = rand.Read(random) // crypto/rand.Read does not fail since Go 1.24
	e.user, e.cred = user, cred
	e.nonce = attrs[1][2:] + base64.RawURLEncoding.EncodeToString(random)
	e.serverFirst = "r=" + e.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(cred.Iterations)
	return e.serverFirst, nil
}

// clientFinalMessage reads "c=binding,r=nonce[,extensions],p=proof",
// checks the proof against the stored key and answers "v=signature".
func (e *scramExchange) clientFinalMessage(msg string) (string, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", errors.New("client-final-message without proof")
	}
	withoutProof := msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil {
		return "", fmt.Errorf("client-final-message proof: %w", err)
	}
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || attrs[0] != "c="+base64.StdEncoding.EncodeToString([]byte(e.gs2Header)) {
		return "", fmt.Errorf("client-final-message: channel binding %q does not match the gs2 header", attrs[0])
	}
	// Kafka's check (ScramSaslServer): the nonce ends with the one the
	// server sent; see the type's comment for why not equality.
	if !strings.HasPrefix(attrs[1], "r=") || !strings.HasSuffix(attrs[1], e.nonce) {
		return "", errors.New("client-final-message: nonce does not end with the server's")
	}
	authMessage := []byte(e.clientFirst + "," + e.serverFirst + "," + withoutProof)
	signature := hmacOf(e.hash, e.cred.StoredKey, string(authMessage))
	if len(proof) != len(signature) {
		return "", errors.New("client-final-message: proof of the wrong size")
	}
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ signature[j]
	}
	sum := e.hash()
	sum.Write(clientKey)
	if subtle.ConstantTimeCompare(sum.Sum(nil), e.cred.StoredKey) != 1 {
		return "", errors.New("client proof does not match the stored key (wrong password)")
	}
	verifier := hmac.New(e.hash, e.cred.ServerKey)
	verifier.Write(authMessage)
	return "v=" + base64.StdEncoding.EncodeToString(verifier.Sum(nil)), nil
}

// decodeSaslName undoes RFC 5802's escaping of ',' (=2C) and '=' (=3D).
func decodeSaslName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("user name %q: a bare '='", s)
		}
		i += 2
	}
	return b.String(), nil
}
