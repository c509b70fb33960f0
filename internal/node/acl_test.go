package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// principals names the principal of each client connection by its local
// address, which is the client address the node sees on loopback: the
// test-only stand-in for SASL.
type principals struct{ byAddr sync.Map }

func (ps *principals) lookup(clientAddr string) (auth.Principal, bool) {
	p, ok := ps.byAddr.Load(clientAddr)
	if !ok {
		return auth.Principal{}, false
	}
	return p.(auth.Principal), true
}

// dialAs is a kgo dialer whose connections act as p.
func (ps *principals) dialAs(p auth.Principal) kgo.Opt {
	var d net.Dialer
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, host)
		if err == nil {
			ps.byAddr.Store(conn.LocalAddr().String(), p)
		}
		return conn, err
	})
}

// TestNodeACLsWithFranzGo runs franz-go against a node with the
// authorizer on: alice is refused with TOPIC_AUTHORIZATION_FAILED until
// the super user grants her ACLs through kadm, then produces and consumes.
func TestNodeACLsWithFranzGo(t *testing.T) {
	ps := &principals{}
	cfg := loadConfig(t, "log.dirs="+t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0",
		"authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer", "super.users=User:admin")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger, testPrincipal: ps.lookup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, n) })

	admin := kadm.NewClient(client(t, n, ps.dialAs(auth.User("admin"))))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	alice := client(t, n, ps.dialAs(auth.User("alice")), kgo.DefaultProduceTopic("orders"),
		kgo.RecordRetries(1), kgo.ProduceRequestTimeout(5*time.Second), kgo.UnknownTopicRetries(1))

	err = alice.ProduceSync(ctx, &kgo.Record{Value: []byte("refused")}).FirstErr()
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("produce without ACLs: %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}

	acls := kadm.NewACLs().Allow("User:alice").Topics("orders").Operations(kadm.OpWrite, kadm.OpRead).
		ResourcePatternType(kadm.ACLPatternLiteral)
	results, err := admin.CreateACLs(ctx, acls)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("create ACL: %v", r.Err)
		}
	}
	group := kadm.NewACLs().Allow("User:alice").Groups("billing").Operations(kadm.OpRead).
		ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := admin.CreateACLs(ctx, group); err != nil {
		t.Fatal(err)
	}
	// A new client: franz-go remembers the failure of the first one.
	alice.Close()
	alice = client(t, n, ps.dialAs(auth.User("alice")), kgo.DefaultProduceTopic("orders"),
		kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"), kgo.FetchMaxWait(200*time.Millisecond))
	if err := alice.ProduceSync(ctx, &kgo.Record{Value: []byte("allowed")}).FirstErr(); err != nil {
		t.Fatalf("produce with ACLs: %v", err)
	}
	for {
		fetches := alice.PollFetches(ctx)
		if err := fetches.Err0(); err != nil {
			t.Fatalf("consume with ACLs: %v", err)
		}
		if recs := fetches.Records(); len(recs) > 0 {
			if string(recs[0].Value) != "allowed" {
				t.Fatalf("consumed %q", recs[0].Value)
			}
			break
		}
	}

	described, err := admin.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Deny().DenyHosts().
		ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(described[0].Described); got != 3 {
		t.Fatalf("described %d ACLs, want 3", got)
	}
}

func TestNodeACLSuperUsersMustHaveAType(t *testing.T) {
	cfg := loadConfig(t, "log.dirs="+t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0",
		"authorizer.class.name=acl", "super.users=User:admin;admin")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger})
	if err == nil {
		shutdown(t, n)
		t.Fatal("started with super.users entry \"admin\"")
	}
	if !strings.Contains(err.Error(), `super.users entry "admin"`) {
		t.Fatalf("error %q does not name the entry", err)
	}
}

// TestNodeACLsSameOnEveryNode creates a DENY through one node of three and
// checks that every broker refuses with it once it has replayed the ACL:
// ACLs live in the metadata log, not in the node that took the request.
// allow.everyone.if.no.acl.found keeps the replica fetches (CLUSTER_ACTION,
// which no ACL names) and the anonymous admin client working.
func TestNodeACLsSameOnEveryNode(t *testing.T) {
	c := startCluster(t, "authorizer.class.name=acl", "allow.everyone.if.no.acl.found=true")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := c.client()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 3, nil, "secret"); err != nil {
		t.Fatal(err)
	}
	viaOne := kadm.NewClient(client(t, c.nodes[0]))
	deny := kadm.NewACLs().Deny("User:*").DenyHosts().Topics("secret").Operations(kadm.OpAll).
		ResourcePatternType(kadm.ACLPatternLiteral)
	if _, err := viaOne.CreateACLs(ctx, deny); err != nil {
		t.Fatal(err)
	}
	for id := int32(1); id <= 3; id++ {
		eventually(t, 10*time.Second, fmt.Sprintf("node %d refuses topic secret", id), func() bool {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("secret")}}
			resp, err := req.RequestWith(ctx, cl.Broker(int(id)))
			return err == nil && len(resp.Topics) == 1 && resp.Topics[0].ErrorCode == kerr.TopicAuthorizationFailed.Code
		})
	}
}

// TestNodeACLsTransactions runs a franz-go transaction as alice on a node
// with the authorizer on. The node sends WriteTxnMarkers and its produce
// verification (AddPartitionsToTxn v4) to its own listener as
// User:ANONYMOUS, so that principal is given CLUSTER_ACTION, as
// security.md says; alice needs WRITE on her transactional id and topic.
func TestNodeACLsTransactions(t *testing.T) {
	ps := &principals{}
	cfg := loadConfig(t, "log.dirs="+t.TempDir(), "listeners=PLAINTEXT://127.0.0.1:0",
		"authorizer.class.name=acl", "super.users=User:admin", "transaction.state.log.replication.factor=1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := Start(ctx, Options{Config: cfg, Logger: quietLogger, testPrincipal: ps.lookup})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shutdown(t, n) })
	admin := kadm.NewClient(client(t, n, ps.dialAs(auth.User("admin"))))
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "ledger"); err != nil {
		t.Fatal(err)
	}
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:ANONYMOUS").Clusters().Operations(kadm.OpClusterAction).ResourcePatternType(kadm.ACLPatternLiteral),
		kadm.NewACLs().Allow("User:alice").Topics("ledger").TransactionalIDs("writer").Operations(kadm.OpWrite, kadm.OpDescribe).
			ResourcePatternType(kadm.ACLPatternLiteral),
	} {
		results, err := admin.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range results {
			if r.Err != nil {
				t.Fatalf("create ACL: %v", r.Err)
			}
		}
	}
	alice := client(t, n, ps.dialAs(auth.User("alice")), kgo.TransactionalID("writer"), kgo.DefaultProduceTopic("ledger"))
	if err := alice.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := alice.ProduceSync(ctx, &kgo.Record{Value: []byte("entry")}).FirstErr(); err != nil {
		t.Fatalf("transactional produce: %v", err)
	}
	if err := alice.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("commit: %v", err)
	}
	reader := client(t, n, ps.dialAs(auth.User("admin")), kgo.ConsumeTopics("ledger"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fetches := reader.PollFetches(ctx)
	if err := fetches.Err0(); err != nil || len(fetches.Records()) != 1 || string(fetches.Records()[0].Value) != "entry" {
		t.Fatalf("read_committed after the commit: %v %d records", err, len(fetches.Records()))
	}
}
