package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runSluice runs a `sluice` client command of the binary under test and
// returns its combined output.
func runSluice(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, sluiceBin, args...)
	cmd.Env = hermeticEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestE2EACLsWithKcat runs the real binary with the authorizer on and
// kcat (librdkafka) as the client: an ACL created with `sluice acl` denies
// User:ANONYMOUS WRITE on one topic, and kcat's produce to it fails with
// Kafka's topic authorization error while another topic still takes
// records. allow.everyone.if.no.acl.found leaves what no ACL names open, so
// the anonymous CLI may create the ACL in the first place.
func TestE2EACLsWithKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed")
	}
	b := startBroker(t, withSet("authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"allow.everyone.if.no.acl.found=true", "auto.create.topics.enable=true"))
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for _, topic := range []string{"open", "secret"} {
		if out, err := runSluice(t, ctx, "topic", "create", topic, "--brokers", b.Addr()); err != nil {
			t.Fatalf("topic create %s: %v\n%s", topic, err, out)
		}
	}
	out, err := runSluice(t, ctx, "acl", "create", "--deny-principal", "User:ANONYMOUS", "--operation", "write",
		"--topic", "secret", "--brokers", b.Addr())
	if err != nil {
		t.Fatalf("acl create: %v\n%s", err, out)
	}

	produce := func(topic string) (string, error) {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(pctx, kcat, "-b", b.Addr(), "-P", "-t", topic, "-X", "message.send.max.retries=0")
		cmd.Stdin = strings.NewReader("one\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := produce("open"); err != nil {
		t.Fatalf("kcat produce to open: %v\n%s", err, out)
	}
	out, err = produce("secret")
	if err == nil || !strings.Contains(strings.ToLower(out), "authorization") {
		t.Fatalf("kcat produce to secret: err %v, output:\n%s\nwant a topic authorization failure", err, out)
	}
}
