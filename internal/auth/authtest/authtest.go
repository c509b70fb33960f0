// Package authtest makes what security tests need at run time: a
// certificate authority and certificates it signs, and SCRAM credentials.
// Keys are generated per test and never written to the repository.
package authtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/auth"
)

// CA is a throwaway certificate authority.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM []byte
	serial  int64
}

// NewCA makes a CA valid for an hour.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sluice test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{cert: cert, key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), serial: 1}
}

// Issue signs a certificate for subject, usable by servers (for localhost
// and 127.0.0.1) and clients alike. It returns PEM certificate and key.
func (ca *CA) Issue(t testing.TB, subject pkix.Name) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial), Subject: subject,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// Credentials is an in-memory credential store.
type Credentials map[[2]string]auth.ScramCredential

// Add stores user's credential for password under mechanism.
func (c Credentials) Add(t testing.TB, mechanism, user, password string) {
	t.Helper()
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := auth.SaltPassword(mechanism, password, salt, auth.ScramMinIterations)
	if err != nil {
		t.Fatal(err)
	}
	stored, server, err := auth.ScramKeys(mechanism, salted)
	if err != nil {
		t.Fatal(err)
	}
	c[[2]string{user, mechanism}] = auth.ScramCredential{Salt: salt, StoredKey: stored, ServerKey: server, Iterations: auth.ScramMinIterations}
}

// ScramCredential implements auth.CredentialStore.
func (c Credentials) ScramCredential(user, mechanism string) (auth.ScramCredential, bool) {
	cred, ok := c[[2]string{user, mechanism}]
	return cred, ok
}
