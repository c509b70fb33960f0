package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/auth/authtest"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/peer"
	"github.com/sluicelog/sluice/internal/vfs"
)

// securePKI is a CA made for one test, with the broker's certificate and
// key written where the node's ssl.* keys point.
type securePKI struct {
	ca                *authtest.CA
	certFile, keyFile string
	caFile            string
	clientCertPEM     []byte
	clientKeyPEM      []byte
}

func newPKI(t testing.TB) *securePKI {
	t.Helper()
	dir := t.TempDir()
	ca := authtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, pkix.Name{CommonName: "localhost", Organization: []string{"sluice"}})
	p := &securePKI{ca: ca, certFile: filepath.Join(dir, "broker.pem"), keyFile: filepath.Join(dir, "broker.key"), caFile: filepath.Join(dir, "ca.pem")}
	for path, data := range map[string][]byte{p.certFile: certPEM, p.keyFile: keyPEM, p.caFile: ca.CertPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.clientCertPEM, p.clientKeyPEM = ca.Issue(t, pkix.Name{CommonName: "alice", OrganizationalUnit: []string{"eng"}})
	return p
}

func (p *securePKI) sets() []string {
	return []string{"ssl.certificate.location=" + p.certFile, "ssl.key.location=" + p.keyFile, "ssl.ca.location=" + p.caFile}
}

// clientTLS trusts the test CA; withCert also presents alice's certificate.
func (p *securePKI) clientTLS(t testing.TB, withCert bool) *tls.Config {
	t.Helper()
	var certPEM, keyPEM []byte
	if withCert {
		certPEM, keyPEM = p.clientCertPEM, p.clientKeyPEM
	}
	cfg, err := auth.ClientTLS(certPEM, keyPEM, p.ca.CertPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startSecureNode runs one node with a listener of each protocol; SSL
// requires client certificates, and SASL_PLAINTEXT sessions last reauthMs.
func startSecureNode(t *testing.T, p *securePKI, logs io.Writer) *Node {
	t.Helper()
	sets := append([]string{
		"log.dirs=" + t.TempDir(),
		"listeners=PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		"listener.name.ssl.ssl.client.auth=required",
		"listener.name.sasl_plaintext.connections.max.reauth.ms=1500",
		"sasl.handshake.timeout.ms=1000",
	}, p.sets()...)
	logger := quietLogger
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: loadConfig(t, sets...), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, n) })
	return n
}

// addUser creates user's SCRAM credentials (both hashes) through the
// PLAINTEXT listener, as an operator's first admin would.
func addUser(t *testing.T, n *Node, user, password string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(client(t, n))
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: user, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: password},
		{User: user, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: password},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Error(); err != nil {
		t.Fatal(err)
	}
}

func saslClient(t *testing.T, addr string, tlsCfg *tls.Config, mech sasl.Mechanism, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := []kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(mech), kgo.RequestRetries(0), kgo.RetryTimeout(5 * time.Second)}
	if tlsCfg != nil {
		all = append(all, kgo.DialTLSConfig(tlsCfg))
	}
	c, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// produceConsumeOne produces a record to topic and reads it back.
func produceConsumeOne(t *testing.T, cl *kgo.Client, topic, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(value)}).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	cl.AddConsumeTopics(topic)
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consume %s: %v", topic, err)
		}
		found := false
		fs.EachRecord(func(r *kgo.Record) { found = found || string(r.Value) == value })
		if found {
			return
		}
	}
}

// TestNodeSecurityListeners drives every protocol of one node with
// franz-go: SASL PLAIN and SCRAM over TLS, a wrong password, mutual TLS
// with the principal from the certificate, and re-authentication.
func TestNodeSecurityListeners(t *testing.T) {
	p := newPKI(t)
	logs := &syncBuffer{}
	n := startSecureNode(t, p, logs)
	addUser(t, n, "alice", "alice-secret")
	saslSSL := n.ListenerAddr("SASL_SSL").String()

	t.Run("describe credentials", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		described, err := kadm.NewClient(client(t, n)).DescribeUserSCRAMs(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		d := described["alice"]
		if d.Err != nil || len(d.CredInfos) != 2 {
			t.Fatalf("DescribeUserSCRAMs = %+v", d)
		}
	})
	for _, tc := range []struct {
		name string
		mech sasl.Mechanism
	}{
		{"PLAIN", plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism()},
		{"SCRAM-SHA-256", scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()},
		{"SCRAM-SHA-512", scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()},
	} {
		t.Run("SASL_SSL "+tc.name, func(t *testing.T) {
			cl := saslClient(t, saslSSL, p.clientTLS(t, false), tc.mech, kgo.AllowAutoTopicCreation())
			produceConsumeOne(t, cl, "sasl-"+strings.ToLower(tc.name), "hello "+tc.name)
			// Metadata points a client of this listener at this listener.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			meta, err := kadm.NewClient(cl).BrokerMetadata(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%s:%d", meta.Brokers[0].Host, meta.Brokers[0].Port); got != saslSSL {
				t.Errorf("Metadata over SASL_SSL advertises %s, want the SASL_SSL listener %s", got, saslSSL)
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		cl := saslClient(t, saslSSL, p.clientTLS(t, false), scram.Auth{User: "alice", Pass: "wrong"}.AsSha512Mechanism())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := cl.Ping(ctx)
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("ping with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})
	t.Run("mTLS principal", func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.ListenerAddr("SSL").String()), kgo.DialTLSConfig(p.clientTLS(t, true)))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "mtls-topic"); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), `principal="User:CN=alice,OU=eng"`) {
			t.Errorf("the audit line does not name the certificate's principal:\n%s", logs.String())
		}
		// Without a client certificate the handshake fails.
		anon, err := kgo.NewClient(kgo.SeedBrokers(n.ListenerAddr("SSL").String()), kgo.DialTLSConfig(p.clientTLS(t, false)))
		if err != nil {
			t.Fatal(err)
		}
		defer anon.Close()
		if err := anon.Ping(ctx); err == nil {
			t.Error("a client without a certificate reached an ssl.client.auth=required listener")
		}
	})
	t.Run("re-authentication keeps a client connected", func(t *testing.T) {
		cl := saslClient(t, n.ListenerAddr("SASL_PLAINTEXT").String(), nil,
			scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(), kgo.AllowAutoTopicCreation())
		produceConsumeOne(t, cl, "reauth", "before")
		time.Sleep(2 * time.Second) // past connections.max.reauth.ms (1.5 s): franz-go re-authenticates
		produceConsumeOne(t, cl, "reauth", "after")
		// A client that reconnected instead would also get through; the
		// broker logs each connection it closes for an expired session.
		if strings.Contains(logs.String(), "SASL session expired") {
			t.Errorf("a connection was closed for an expired session instead of re-authenticating:\n%s", logs.String())
		}
	})
}

// rawConn speaks Kafka frames by hand, for what clients do not do.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(15 * time.Second))
	return &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawConn) writeFrame(b []byte) {
	c.t.Helper()
	if err := c.tryWriteFrame(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) tryWriteFrame(b []byte) error {
	out := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	_, err := c.conn.Write(append(out, b...))
	return err
}

func (c *rawConn) readFrame() ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c.r, b)
	return b, err
}

// send sends req with a v1 header (v2 for flexible versions).
func (c *rawConn) send(req kmsg.Request) {
	c.t.Helper()
	if err := c.trySend(req); err != nil {
		c.t.Fatal(err)
	}
}

// trySend is send, returning the write's error: a broker that refuses a
// frame by its size closes the connection with the rest unread, and a
// client still writing it sees a reset.
func (c *rawConn) trySend(req kmsg.Request) error {
	c.corr++
	b := binary.BigEndian.AppendUint16(nil, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(c.corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	return c.tryWriteFrame(req.AppendTo(b))
}

func (c *rawConn) roundTrip(req kmsg.Request) kmsg.Response {
	c.t.Helper()
	c.send(req)
	frame, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("%s: %v", kmsg.NameForKey(req.Key()), err)
	}
	resp := req.ResponseKind()
	body := frame[4:]
	if resp.IsFlexible() {
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatal(err)
	}
	return resp
}

// requireClosed waits (bounded by the conn's deadline) for the broker to
// close the connection.
func (c *rawConn) requireClosed(what string) {
	c.t.Helper()
	if _, err := c.readFrame(); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
		c.t.Fatalf("%s: read %v, want the connection closed", what, err)
	}
}

func isReset(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && !opErr.Timeout()
}

// TestNodeSecurityRefusals checks what a secured broker refuses: plaintext
// on a TLS listener, a client that never authenticates, an oversized token,
// requests before authentication and after the session expired. Each
// closes the connection, and the broker keeps no goroutine for it.
func TestNodeSecurityRefusals(t *testing.T) {
	p := newPKI(t)
	logs := &syncBuffer{}
	n := startSecureNode(t, p, logs)
	addUser(t, n, "alice", "alice-secret")
	saslPlain := n.ListenerAddr("SASL_PLAINTEXT").String()

	t.Run("plaintext on a TLS listener", func(t *testing.T) {
		c := dialRaw(t, n.ListenerAddr("SASL_SSL").String())
		c.send(kmsg.NewPtrApiVersionsRequest())
		c.requireClosed("plaintext ApiVersions to SASL_SSL")
		if !strings.Contains(logs.String(), "TLS handshake failed") {
			t.Error("the refused handshake was not logged")
		}
	})
	t.Run("handshake never finished", func(t *testing.T) {
		start := time.Now()
		c := dialRaw(t, saslPlain)
		c.requireClosed("a connection that never authenticates")
		if waited := time.Since(start); waited > 10*time.Second {
			t.Errorf("dropped after %v, sasl.handshake.timeout.ms is 1 s", waited)
		}
	})
	t.Run("oversized token", func(t *testing.T) {
		c := dialRaw(t, saslPlain)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		c.roundTrip(hs)
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.SASLAuthBytes = make([]byte, 600<<10) // over sasl.server.max.receive.size
		// Refused by its size prefix, the frame's rest is never read: the
		// broker may close before the write ends, which then sees a reset.
		if err := c.trySend(req); err != nil && !isReset(err) {
			t.Fatal(err)
		}
		c.requireClosed("a 600 KiB SASL token")
	})
	t.Run("request before authentication", func(t *testing.T) {
		c := dialRaw(t, saslPlain)
		c.send(kmsg.NewPtrMetadataRequest())
		c.requireClosed("Metadata before SASL")
	})
	t.Run("v0 raw tokens, then session expiry", func(t *testing.T) {
		c := dialRaw(t, saslPlain)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Mechanism = "PLAIN" // v0: raw tokens follow
		if r := c.roundTrip(hs).(*kmsg.SASLHandshakeResponse); r.ErrorCode != 0 {
			t.Fatalf("SaslHandshake v0: %v", kerr.ErrorForCode(r.ErrorCode))
		}
		c.writeFrame([]byte("\x00alice\x00alice-secret"))
		if b, err := c.readFrame(); err != nil || len(b) != 0 {
			t.Fatalf("raw PLAIN token answered %q, %v; want an empty frame", b, err)
		}
		meta := kmsg.NewPtrMetadataRequest()
		if r := c.roundTrip(meta).(*kmsg.MetadataResponse); len(r.Brokers) != 1 {
			t.Fatalf("Metadata after authentication: %+v", r.Brokers)
		}
		time.Sleep(2 * time.Second) // past connections.max.reauth.ms (1.5 s) without re-authenticating
		c.send(meta)
		c.requireClosed("Metadata after the session expired")
	})
	t.Run("wrong password closes after the answer", func(t *testing.T) {
		c := dialRaw(t, saslPlain)
		hs := kmsg.NewPtrSASLHandshakeRequest()
		hs.Version, hs.Mechanism = 1, "PLAIN"
		c.roundTrip(hs)
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 1, []byte("\x00alice\x00nope")
		r := c.roundTrip(req).(*kmsg.SASLAuthenticateResponse)
		if r.ErrorCode != kerr.SaslAuthenticationFailed.Code || r.ErrorMessage == nil {
			t.Fatalf("wrong password: %v %v", kerr.ErrorForCode(r.ErrorCode), r.ErrorMessage)
		}
		c.requireClosed("after SASL_AUTHENTICATION_FAILED")
	})
	eventually(t, 10*time.Second, "every refused connection to be gone", func() bool {
		total := 0
		for _, l := range n.Listeners() {
			if l.Name != "PLAINTEXT" { // addUser's admin client stays until cleanup
				total += n.server.NumConnectionsOn(l.Name)
			}
		}
		return total == 0
	})
}

// TestNodeSecureClusterReplicates runs three nodes whose followers fetch
// over a SASL_SSL inter-broker listener, as a SCRAM user, and whose
// controllers talk mutual TLS: an acks=all produce to a topic replicated
// three times succeeds only if every follower's fetches get through.
func TestNodeSecureClusterReplicates(t *testing.T) {
	p := newPKI(t)
	passwordFile := filepath.Join(t.TempDir(), "broker.password")
	if err := os.WriteFile(passwordFile, []byte("broker-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := startClusterPerNode(t, func(i int) []string {
		return []string{"listeners=PLAINTEXT://" + "127.0.0.1:0" + ",INTERNAL://127.0.0.1:0"}
	}, append(p.sets(),
		"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:SASL_SSL",
		"inter.broker.listener.name=INTERNAL",
		"inter.broker.sasl.username=broker", "inter.broker.sasl.password.file="+passwordFile,
		"sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
		"controller.listener.security.protocol=SSL",
	)...)
	addUser(t, c.nodes[0], "broker", "broker-secret")

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.nodes[0].Addr().String()), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("replicated"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, nil, "replicated"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d: %v", i, err)
		}
	}
	topics, err := kadm.NewClient(cl).ListTopics(ctx, "replicated")
	if err != nil {
		t.Fatal(err)
	}
	if isr := topics["replicated"].Partitions[0].ISR; len(isr) != 3 {
		t.Errorf("ISR %v, want all three replicas", isr)
	}

	// A transaction: its markers and KIP-890 verification go broker to
	// broker over the same SASL_SSL listener.
	txn, err := kgo.NewClient(kgo.SeedBrokers(c.nodes[0].Addr().String()), kgo.TransactionalID("secure-txn"),
		kgo.DefaultProduceTopic("replicated"))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := txn.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprint("txn-", i))}).FirstErr(); err != nil {
			t.Fatalf("transactional produce %d: %v", i, err)
		}
	}
	if err := txn.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	rc, err := kgo.NewClient(kgo.SeedBrokers(c.nodes[1].Addr().String()), kgo.ConsumeTopics("replicated"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	committed := 0
	for committed < 25 && ctx.Err() == nil {
		committed += rc.PollFetches(ctx).NumRecords()
	}
	if committed != 25 {
		t.Errorf("read_committed saw %d records, want 20 + 5 committed", committed)
	}
}

// TestNodePeerReauthenticates keeps one broker-to-broker connection (the
// follower's kind) across a session expiry: peer must authenticate again
// before the leader's deadline, or the leader closes the connection at the
// next request and the request fails (peer does not redial by itself).
func TestNodePeerReauthenticates(t *testing.T) {
	p := newPKI(t)
	logs := &syncBuffer{}
	n := startSecureNode(t, p, logs)
	addUser(t, n, "broker", "broker-secret")
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := peer.Dial(ctx, n.ListenerAddr("SASL_PLAINTEXT").String(), peer.Options{
				ClientID: "test-peer", SASL: &peer.SASL{Mechanism: mech, User: "broker", Password: "broker-secret"},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			for round := range 2 {
				if _, err := conn.Request(ctx, kmsg.NewPtrMetadataRequest()); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				if round == 0 {
					time.Sleep(2 * time.Second) // past the listener's 1.5 s session
				}
			}
			if strings.Contains(logs.String(), "SASL session expired") {
				t.Errorf("the session expired instead of being renewed:\n%s", logs.String())
			}
		})
	}
	t.Run("wrong password", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := peer.Dial(ctx, n.ListenerAddr("SASL_PLAINTEXT").String(), peer.Options{
			SASL: &peer.SASL{Mechanism: "SCRAM-SHA-512", User: "broker", Password: "nope"},
		})
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("dial with a wrong password: %v", err)
		}
	})
}

// TestNodeConsoleOnASecuredNode: a node whose only listener is SASL_SSL
// still serves its web console, which dials that listener with the
// broker's own credential (created offline before the first start).
func TestNodeConsoleOnASecuredNode(t *testing.T) {
	p := newPKI(t)
	dir, files := t.TempDir(), t.TempDir()
	salt := []byte("console-test-salt")
	salted, err := auth.SaltPassword(auth.MechanismScramSHA512, "broker-secret", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	stored, server, err := auth.ScramKeys(auth.MechanismScramSHA512, salted)
	if err != nil {
		t.Fatal(err)
	}
	if err := AddBootstrapCredential(vfs.OS(), dir, metadata.UserScramCredential{
		Name: "broker", Mechanism: metadata.ScramSHA512, Salt: salt, StoredKey: stored, ServerKey: server, Iterations: 4096,
	}); err != nil {
		t.Fatal(err)
	}
	passwordFile := filepath.Join(files, "broker.password")
	if err := os.WriteFile(passwordFile, []byte("broker-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, dir, append(p.sets(), "listeners=SASL_SSL://127.0.0.1:0",
		"inter.broker.sasl.username=broker", "inter.broker.sasl.password.file="+passwordFile)...)
	code, body := httpGet(t, n.HTTPAddr().String(), "/topics")
	if code != 200 || !strings.Contains(body, "__consumer_offsets") && !strings.Contains(body, "Topics") {
		t.Fatalf("console /topics on a SASL_SSL-only node = %d: %.300s", code, body)
	}
}

// TestNodeSecurityMetrics: a failed SASL authentication is counted once,
// under SaslAuthenticate's SASL_AUTHENTICATION_FAILED, in Kafka's request
// error metric.
func TestNodeSecurityMetrics(t *testing.T) {
	p := newPKI(t)
	n := startSecureNode(t, p, nil)
	addUser(t, n, "alice", "alice-secret")
	c := dialRaw(t, n.ListenerAddr("SASL_PLAINTEXT").String())
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version, hs.Mechanism = 1, "PLAIN"
	c.roundTrip(hs)
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = 1, []byte("\x00alice\x00nope")
	c.roundTrip(req)
	c.requireClosed("after SASL_AUTHENTICATION_FAILED")
	got := series(t, scrapeNode(t, n), `kafka_network_requestmetrics_errors_total{error="SASL_AUTHENTICATION_FAILED",request="SASLAuthenticate"}`)
	if got != 1 {
		t.Errorf("SASL_AUTHENTICATION_FAILED counted %v times, want 1", got)
	}
}
