package main

import (
	"crypto/x509/pkix"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/auth/authtest"
	"github.com/sluicelog/sluice/internal/node"
)

// TestUserBootstrapThenOnline is the secured cluster's first day: the
// admin's credential is written into the data dir before the first start,
// the broker's only listener is SASL_SSL, and the admin then manages
// users online through the CLI's TLS and SASL flags and a kcat-style -F
// file.
func TestUserBootstrapThenOnline(t *testing.T) {
	dir, files := t.TempDir(), t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(files, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	ca := authtest.NewCA(t)
	certPEM, keyPEM := ca.Issue(t, pkix.Name{CommonName: "localhost"})
	caFile, certFile, keyFile := write("ca.pem", string(ca.CertPEM)), write("broker.pem", string(certPEM)), write("broker.key", string(keyPEM))
	adminPass, alicePass := write("admin.pass", "admin-secret\n"), write("alice.pass", "alice-secret\n")

	_, stderr, code := runCLI(t, "user", "create", "admin", "--password-file", adminPass, "--mechanism", "SCRAM-SHA-512", "--data-dir", dir)
	requireCode(t, code, exitOK, stderr)
	addr := startBroker(t, "log.dirs="+dir, "listeners=SASL_SSL://127.0.0.1:0",
		"ssl.certificate.location="+certFile, "ssl.key.location="+keyFile, "ssl.ca.location="+caFile)
	if _, err := os.Stat(filepath.Join(dir, node.BootstrapCredentialsFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the bootstrap file is still there after the start: %v", err)
	}

	admin := []string{"--brokers", addr, "--tls-ca", caFile, "--sasl-mechanism", "SCRAM-SHA-512", "--user", "admin", "--password-file", adminPass}
	stdout, stderr, code := runCLI(t, append([]string{"user", "list"}, admin...)...)
	requireCode(t, code, exitOK, stderr)
	if !strings.Contains(stdout, "admin") || !strings.Contains(stdout, "SCRAM-SHA-512") {
		t.Fatalf("user list:\n%s", stdout)
	}

	// Online: the new user's password is user create's --password-file,
	// the admin's comes from the environment.
	t.Setenv(passwordEnv, "admin-secret")
	adminEnv := []string{"--brokers", addr, "--tls-ca", caFile, "--sasl-mechanism", "SCRAM-SHA-512", "--user", "admin"}
	_, stderr, code = runCLI(t, append([]string{"user", "create", "alice", "--password-file", alicePass}, adminEnv...)...)
	requireCode(t, code, exitOK, stderr)

	t.Setenv(passwordEnv, "")
	conf := write("alice.conf", "bootstrap.servers="+addr+"\nsecurity.protocol=SASL_SSL\nsasl.mechanisms=PLAIN\n"+
		"sasl.username=alice\nsasl.password=alice-secret\nssl.ca.location="+caFile+"\n")
	topic := uniqueName("secured")
	_, stderr, code = runCLI(t, "topic", "create", topic, "-F", conf)
	requireCode(t, code, exitOK, stderr)

	wrong := write("wrong.conf", strings.Replace(readFile(t, conf), "alice-secret", "nope", 1))
	_, stderr, code = runCLI(t, "topic", "list", "-F", wrong)
	if code != exitError || !strings.Contains(stderr, "SASL_AUTHENTICATION_FAILED") {
		t.Errorf("wrong password: exit %d, stderr %q", code, stderr)
	}

	_, stderr, code = runCLI(t, append([]string{"user", "delete", "alice"}, admin...)...)
	requireCode(t, code, exitOK, stderr)
	stdout, stderr, code = runCLI(t, append([]string{"user", "list", "--json"}, admin...)...)
	requireCode(t, code, exitOK, stderr)
	if strings.Contains(stdout, "alice") {
		t.Errorf("alice still listed after delete:\n%s", stdout)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
