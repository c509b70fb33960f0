package auth_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/auth/authtest"
)

func TestSASLPlainChecksTheScramStore(t *testing.T) {
	creds := authtest.Credentials{}
	creds.Add(t, auth.MechanismScramSHA256, "alice", "secret")
	enabled := []string{auth.MechanismPlain}
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"\x00alice\x00secret", true},
		{"alice\x00alice\x00secret", true},
		{"\x00alice\x00wrong", false},
		{"bob\x00alice\x00secret", false},
		{"\x00nobody\x00secret", false},
		{"garbage", false},
	} {
		ex, err := auth.NewExchange(auth.MechanismPlain, enabled, creds)
		if err != nil {
			t.Fatal(err)
		}
		_, done, err := ex.Step([]byte(tc.token))
		if tc.ok != (done && err == nil) || (!tc.ok && !errors.Is(err, auth.ErrAuthenticationFailed)) {
			t.Errorf("PLAIN %q: done %v err %v, want ok=%v", tc.token, done, err, tc.ok)
		}
		if tc.ok && ex.Principal().String() != "User:alice" {
			t.Errorf("principal %v", ex.Principal())
		}
	}
	if _, err := auth.NewExchange(auth.MechanismScramSHA256, enabled, creds); !errors.Is(err, auth.ErrUnsupportedMechanism) {
		t.Errorf("a mechanism not enabled: %v", err)
	}
}

func TestSASLScramWithXdgClient(t *testing.T) {
	creds := authtest.Credentials{}
	creds.Add(t, auth.MechanismScramSHA512, "alice", "secret")
	enabled := []string{auth.MechanismScramSHA512}
	for _, password := range []string{"secret", "wrong"} {
		client, err := scram.SHA512.NewClient("alice", password, "")
		if err != nil {
			t.Fatal(err)
		}
		conv := client.NewConversation()
		ex, err := auth.NewExchange(auth.MechanismScramSHA512, enabled, creds)
		if err != nil {
			t.Fatal(err)
		}
		first, _ := conv.Step("")
		challenge, done, err := ex.Step([]byte(first))
		if err != nil || done {
			t.Fatalf("first step: %v %v", done, err)
		}
		final, err := conv.Step(string(challenge))
		if err != nil {
			t.Fatal(err)
		}
		verifier, done, err := ex.Step([]byte(final))
		if password == "wrong" {
			if !errors.Is(err, auth.ErrAuthenticationFailed) {
				t.Errorf("wrong password: done %v err %v", done, err)
			}
			continue
		}
		if err != nil || !done || ex.Principal().String() != "User:alice" {
			t.Fatalf("final step: %v %v %v", done, err, ex.Principal())
		}
		if _, err := conv.Step(string(verifier)); err != nil || !conv.Valid() {
			t.Errorf("client does not accept the server's verifier: %v", err)
		}
	}
}

func TestSessionReauthentication(t *testing.T) {
	creds := authtest.Credentials{}
	creds.Add(t, auth.MechanismScramSHA256, "alice", "a")
	creds.Add(t, auth.MechanismScramSHA256, "bob", "b")
	s := auth.NewSession("SASL", "SASL_PLAINTEXT", auth.Anonymous)
	s.Mechanisms, s.ReauthMs = []string{auth.MechanismPlain}, 1000
	if s.IsAuthenticated() {
		t.Fatal("a SASL session starts authenticated")
	}
	if _, _, _, err := s.Authenticate([]byte("\x00alice\x00a"), 0); !errors.Is(err, auth.ErrNoHandshake) {
		t.Fatalf("authenticate before handshake: %v", err)
	}
	must(t, s.Handshake(auth.MechanismPlain, false, creds))
	_, done, lifetime, err := s.Authenticate([]byte("\x00alice\x00a"), 100)
	if err != nil || !done || lifetime != 1000 || !s.IsAuthenticated() || s.Principal().String() != "User:alice" {
		t.Fatalf("authenticate: %v %v %d %v", done, err, lifetime, s.Principal())
	}
	if s.Expired(1099) || !s.Expired(1100) {
		t.Error("session expiry is not authentication time + connections.max.reauth.ms")
	}
	must(t, s.Handshake(auth.MechanismPlain, false, creds))
	if _, _, _, err := s.Authenticate([]byte("\x00bob\x00b"), 1200); !errors.Is(err, auth.ErrAuthenticationFailed) {
		t.Errorf("re-authentication as bob: %v", err)
	}
	must(t, s.Handshake(auth.MechanismPlain, false, creds))
	if _, _, _, err := s.Authenticate([]byte("\x00alice\x00a"), 1200); err != nil || s.Expired(2100) {
		t.Errorf("re-authentication as alice: %v; expired %v", err, s.Expired(2100))
	}
}

func TestTLSPrincipalFromCertificate(t *testing.T) {
	ca := authtest.NewCA(t)
	certPEM, _ := ca.Issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}, Organization: []string{"Example"}, Country: []string{"US"}})
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	state := tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
	if got := auth.CertificatePrincipal(state, nil).String(); got != "User:CN=alice,OU=eng,O=Example,C=US" {
		t.Errorf("default principal %q", got)
	}
	rules, err := auth.ParsePrincipalRules(`RULE:^CN=([a-z]+),OU=eng,.*$/$1@eng/U, RULE:^CN=(.*?),.*$/$1/, DEFAULT`)
	if err != nil {
		t.Fatal(err)
	}
	if got := auth.CertificatePrincipal(state, rules).String(); got != "User:ALICE@ENG" {
		t.Errorf("mapped principal %q", got)
	}
	if got := rules.Map("CN=bob,OU=ops,C=US"); got != "bob" {
		t.Errorf("second rule: %q", got)
	}
	if got := auth.CertificatePrincipal(tls.ConnectionState{}, rules); !got.IsAnonymous() {
		t.Errorf("no certificate: %v", got)
	}
	if _, err := auth.ParsePrincipalRules("RULE:x"); err == nil {
		t.Error("a rule without replacement parsed")
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestSASLScramAcceptsLibrdkafkaNonce replays librdkafka's client-final
// message, whose nonce repeats the client's part in front of the combined
// nonce: Kafka accepts it (the nonce ends with the server's), and so must
// Sluice, or no kcat or confluent-kafka client can log in with SCRAM.
func TestSASLScramAcceptsLibrdkafkaNonce(t *testing.T) {
	creds := authtest.Credentials{}
	creds.Add(t, auth.MechanismScramSHA256, "alice", "secret")
	cred, _ := creds.ScramCredential("alice", auth.MechanismScramSHA256)
	for _, tc := range []struct {
		name   string
		nonce  func(client, combined string) string
		accept bool
	}{
		{"RFC 5802", func(_, combined string) string { return combined }, true},
		{"librdkafka", func(client, combined string) string { return client + combined }, true},
		{"not the server's", func(client, _ string) string { return client + "forged" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex, err := auth.NewExchange(auth.MechanismScramSHA256, []string{auth.MechanismScramSHA256}, creds)
			must(t, err)
			const clientNonce = "fyko+d2lbbFgONRv9qkxdawL"
			first := "n=alice,r=" + clientNonce
			serverFirst, _, err := ex.Step([]byte("n,," + first))
			must(t, err)
			combined := strings.TrimPrefix(strings.Split(string(serverFirst), ",")[0], "r=")
			withoutProof := "c=biws,r=" + tc.nonce(clientNonce, combined)
			salted, err := auth.SaltPassword(auth.MechanismScramSHA256, "secret", cred.Salt, cred.Iterations)
			must(t, err)
			clientKey := hmacSHA256(salted, "Client Key")
			signature := hmacSHA256(cred.StoredKey, first+","+string(serverFirst)+","+withoutProof)
			proof := make([]byte, len(clientKey))
			for i := range proof {
				proof[i] = clientKey[i] ^ signature[i]
			}
			_, done, err := ex.Step([]byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)))
			if tc.accept != (done && err == nil) {
				t.Fatalf("done %v, err %v; want accepted=%v", done, err, tc.accept)
			}
		})
	}
}

func hmacSHA256(key []byte, text string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(text))
	return m.Sum(nil)
}
