package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TestNodeACLsOverSASL authorizes principals that SASL established, with
// no test hook: alice authenticates with SCRAM-SHA-256 on a SASL_PLAINTEXT
// listener and is refused with TOPIC_AUTHORIZATION_FAILED until an ACL
// names User:alice. The operator works over PLAINTEXT as User:ANONYMOUS,
// the super user here.
func TestNodeACLsOverSASL(t *testing.T) {
	cfg := loadConfig(t, "log.dirs="+t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
		"authorizer.class.name=acl", "super.users=User:ANONYMOUS")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, n) })
	addUser(t, n, "alice", "alice-secret")
	admin := kadm.NewClient(client(t, n))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	saslAddr := n.ListenerAddr("SASL_PLAINTEXT").String()
	mech := scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism()

	refused := saslClient(t, saslAddr, nil, mech, kgo.RecordRetries(1), kgo.UnknownTopicRetries(1))
	err = refused.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("no")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice over SASL without ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
	refused.Close()

	results, err := admin.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("orders").
		Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	allowed := saslClient(t, saslAddr, nil, mech)
	if err := allowed.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("yes")}).FirstErr(); err != nil {
		t.Fatalf("alice over SASL with WRITE: %v", err)
	}
}
