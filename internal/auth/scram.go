package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// SCRAM (RFC 5802) as Kafka uses it: the credential a server keeps is
// derived from the password, and the password is never stored.
//
//	SaltedPassword = PBKDF2-HMAC-H(password, salt, iterations)
//	StoredKey      = H(HMAC(SaltedPassword, "Client Key"))
//	ServerKey      = HMAC(SaltedPassword, "Server Key")
//
// The password is used as its UTF-8 bytes, without SASLprep, as Kafka's
// ScramFormatter does; ASCII passwords are the same either way.

// SASL mechanism names, as Kafka spells them in sasl.enabled.mechanisms.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Kafka's bounds on a SCRAM credential's iteration count: fewer makes a
// stolen credential cheap to brute-force, more makes every login (and
// every PLAIN check against the same credential) expensive.
const (
	ScramMinIterations = 4096
	ScramMaxIterations = 16384
)

// ScramHash returns the hash of a SCRAM mechanism.
func ScramHash(mechanism string) (func() hash.Hash, bool) {
	switch mechanism {
	case MechanismScramSHA256:
		return sha256.New, true
	case MechanismScramSHA512:
		return sha512.New, true
	}
	return nil, false
}

// SaltPassword computes SaltedPassword for mechanism.
func SaltPassword(mechanism, password string, salt []byte, iterations int) ([]byte, error) {
	h, ok := ScramHash(mechanism)
	if !ok {
		return nil, fmt.Errorf("SCRAM mechanism %q", mechanism)
	}
	if iterations <= 0 || len(salt) == 0 {
		return nil, fmt.Errorf("SCRAM salt of %d bytes, %d iterations", len(salt), iterations)
	}
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

// ScramKeys derives the stored and server keys from a salted password.
func ScramKeys(mechanism string, saltedPassword []byte) (storedKey, serverKey []byte, err error) {
	h, ok := ScramHash(mechanism)
	if !ok {
		return nil, nil, fmt.Errorf("SCRAM mechanism %q", mechanism)
	}
	clientKey := hmacOf(h, saltedPassword, "Client Key")
	sum := h()
	sum.Write(clientKey)
	return sum.Sum(nil), hmacOf(h, saltedPassword, "Server Key"), nil
}

// CheckScramPassword reports whether password matches a stored SCRAM
// credential, by deriving the stored key with the credential's salt and
// iterations. It is how PLAIN is checked against the SCRAM store.
func CheckScramPassword(mechanism, password string, salt, storedKey []byte, iterations int) bool {
	salted, err := SaltPassword(mechanism, password, salt, iterations)
	if err != nil {
		return false
	}
	got, _, err := ScramKeys(mechanism, salted)
	return err == nil && subtle.ConstantTimeCompare(got, storedKey) == 1
}

func hmacOf(h func() hash.Hash, key []byte, text string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(text))
	return m.Sum(nil)
}
