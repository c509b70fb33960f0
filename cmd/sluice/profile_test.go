package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/vfs"
	"github.com/spf13/cobra"
)

// isolateProfiles points the profiles file at a fresh directory and clears
// the environment that would pick brokers or a profile.
func isolateProfiles(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv(profileEnv, "")
	t.Setenv(brokersEnv, "")
	return filepath.Join(dir, "sluice", profilesFileName)
}

func profileList(t *testing.T) []profileJSON {
	t.Helper()
	out, stderr, code := runCLI(t, "profile", "list", "--json")
	requireCode(t, code, exitOK, stderr)
	var got []profileJSON
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("profile list --json: %v\n%s", err, out)
	}
	return got
}

func TestProfileCreateUseShowDelete(t *testing.T) {
	path := isolateProfiles(t)
	if out, _, _ := runCLI(t, "profile", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("profile list --json with no file = %q, want []", out)
	}
	_, stderr, code := runCLI(t, "profile", "create", "local", "--brokers", "localhost:9092")
	requireCode(t, code, exitOK, stderr)
	_, stderr, code = runCLI(t, "profile", "create", "prod", "--brokers", "k1:9092,k2:9092")
	requireCode(t, code, exitOK, stderr)
	got := profileList(t)
	if len(got) != 2 || got[0] != (profileJSON{"local", "localhost:9092", true}) || got[1] != (profileJSON{"prod", "k1:9092,k2:9092", false}) {
		t.Fatalf("after two creates: %+v (the first is current)", got)
	}

	_, stderr, code = runCLI(t, "profile", "use", "prod")
	requireCode(t, code, exitOK, stderr)
	out, stderr, code := runCLI(t, "profile", "show", "--json")
	requireCode(t, code, exitOK, stderr)
	var shown profileJSON
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown != (profileJSON{"prod", "k1:9092,k2:9092", true}) {
		t.Fatalf("profile show --json = %s (%v)", out, err)
	}
	data, err := vfs.ReadFile(vfs.OS(), path, 1<<20)
	if err != nil || !strings.Contains(string(data), "current = prod\n") || !strings.Contains(string(data), "[prod]\nbootstrap.servers = k1:9092,k2:9092\n") {
		t.Fatalf("%s: %q (%v)", path, data, err)
	}

	_, stderr, code = runCLI(t, "profile", "delete", "prod")
	requireCode(t, code, exitOK, stderr)
	if got := profileList(t); len(got) != 1 || got[0].Current {
		t.Fatalf("after deleting the current profile: %+v", got)
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"profile", "create", "local", "--brokers", "h:1"}, exitError, `profile "local" already exists`},
		{[]string{"profile", "create", "x"}, exitUsage, "--brokers is required"},
		{[]string{"profile", "create", "x", "--brokers", "nocolon"}, exitUsage, "want HOST:PORT"},
		{[]string{"profile", "create", "a b", "--brokers", "h:1"}, exitUsage, "profile name"},
		{[]string{"profile", "use", "nope"}, exitError, `no profile "nope"`},
		{[]string{"profile", "delete", "nope"}, exitError, `no profile "nope"`},
		{[]string{"profile", "show"}, exitError, "no current profile"},
	} {
		_, stderr, code := runCLI(t, tc.args...)
		requireCode(t, code, tc.code, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr %q, want %q", tc.args, stderr, tc.want)
		}
	}
}

// Brokers come from --brokers, else $SLUICE_BROKERS, else the
// --config-file or profile (--profile, $SLUICE_PROFILE, the current one),
// else localhost:9092.
func TestProfileBrokersPrecedence(t *testing.T) {
	isolateProfiles(t)
	live, dead := startBroker(t), deadBroker(t)
	for _, args := range [][]string{
		{"profile", "create", "live", "--brokers", live},
		{"profile", "create", "dead", "--brokers", dead},
	} {
		_, stderr, code := runCLI(t, args...)
		requireCode(t, code, exitOK, stderr)
	}
	cfg := filepath.Join(t.TempDir(), "kcat.conf")
	if err := vfs.WriteFileAtomic(vfs.OS(), cfg, []byte("# as kcat -F reads it\nbootstrap.servers="+live+"\n")); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.conf")
	if err := vfs.WriteFileAtomic(vfs.OS(), bad, []byte("metadata.broker.list="+live+"\nsasl.kerberos.service.name=kafka\n")); err != nil {
		t.Fatal(err)
	}
	reaches := func(t *testing.T, want string, args ...string) {
		t.Helper()
		_, stderr, code := runCLI(t, append([]string{"topic", "list", "--timeout", "5s"}, args...)...)
		if want == live {
			requireCode(t, code, exitOK, stderr)
			return
		}
		requireCode(t, code, exitError, stderr)
		if !strings.Contains(stderr, "cannot reach "+want) {
			t.Errorf("%v: stderr %q, want it to try %s", args, stderr, want)
		}
	}
	reaches(t, live)                      // the current profile, the first created
	reaches(t, dead, "--profile", "dead") // --profile
	reaches(t, live, "--profile", "dead", "--brokers", live)
	reaches(t, live, "-F", cfg)
	reaches(t, live, "--config-file", cfg)
	t.Setenv(profileEnv, "dead")
	reaches(t, dead)
	reaches(t, live, "--profile", "live") // the flag over the environment
	reaches(t, live, "-F", cfg)
	t.Setenv(brokersEnv, live)
	reaches(t, live) // $SLUICE_BROKERS over the profile
	reaches(t, dead, "--brokers", dead)

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--profile", "nope"}, exitError, `no profile "nope"`},
		{[]string{"-F", bad}, exitError, `bad.conf:2: unknown setting "sasl.kerberos.service.name"`},
		{[]string{"-F", filepath.Join(t.TempDir(), "missing")}, exitError, "--config-file"},
		{[]string{"-F", cfg, "--profile", "live"}, exitUsage, "give one"},
	} {
		_, stderr, code := runCLI(t, append([]string{"topic", "list"}, tc.args...)...)
		requireCode(t, code, tc.code, stderr)
		if !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: stderr %q, want %q", tc.args, stderr, tc.want)
		}
	}
}

func TestProfileDefaultBrokers(t *testing.T) {
	isolateProfiles(t)
	e := newClientEnv(&cobra.Command{})
	if err := e.resolve(); err != nil || e.brokers != defaultBrokers {
		t.Fatalf("with no flag, environment or profile: %q (%v), want %s", e.brokers, err, defaultBrokers)
	}
}

func TestProfileFileParse(t *testing.T) {
	pf := &profilesFile{path: "p"}
	err := pf.parse("# c\ncurrent = b\n\n[a]\nbootstrap.servers = h:1\n[b]\nmetadata.broker.list=h:2,h:3\n")
	if err != nil || pf.current != "b" || len(pf.profiles) != 2 || pf.profiles[1].Brokers != "h:2,h:3" {
		t.Fatalf("parse: %+v %v", pf, err)
	}
	for text, want := range map[string]string{
		"bootstrap.servers=h:1\n": "p:1: \"bootstrap.servers\" before the first [profile] section",
		"[a]\n[a]\n":              `p:2: profile "a" defined twice`,
		"[a\n":                    "p:1: malformed section",
		"[a]\nnonsense\n":         `p:2: "nonsense": want key=value`,
	} {
		err := (&profilesFile{path: "p"}).parse(text)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parse %q: %v, want %q", text, err, want)
		}
	}
}
