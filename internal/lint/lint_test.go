package lint

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

const fixtureModule = "example.com/fixture"

// TestLintTree is the check that matters: the module's own code obeys the
// rules. Each violation is printed on its own line as file:line: [rule].
func TestLintTree(t *testing.T) {
	root, err := findModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	module, err := modulePath(root)
	if err != nil {
		t.Fatal(err)
	}
	files, err := loadModule(root)
	if err != nil {
		t.Fatal(err)
	}
	// Guard against a walk that silently finds nothing and so passes.
	if !containsFile(files, "cmd/sluice/main.go") {
		t.Fatalf("found %d files under %s but not cmd/sluice/main.go", len(files), root)
	}
	violations := check(module, files)
	if len(violations) == 0 {
		return
	}
	lines := make([]string, len(violations))
	for i, v := range violations {
		lines[i] = v.String()
	}
	t.Errorf("%d violations of the layering and style rules (CONTRIBUTING.md) (rules in internal/lint/rules_test.go):\n%s",
		len(violations), strings.Join(lines, "\n"))
}

func containsFile(files []sourceFile, rel string) bool {
	for _, f := range files {
		if f.path == rel {
			return true
		}
	}
	return false
}

// checkFixture runs the checker over in-memory sources keyed by
// module-relative path and returns "path:line [rule]" for each violation.
func checkFixture(t *testing.T, sources map[string]string) []string {
	t.Helper()
	var files []sourceFile
	for p, src := range sources {
		files = append(files, sourceFile{pkg: path.Dir(p), path: p, src: []byte(src)})
	}
	var got []string
	for _, v := range check(fixtureModule, files) {
		got = append(got, fmt.Sprintf("%s [%s]", v.pos, v.rule))
	}
	sort.Strings(got)
	return got
}

func requireViolations(t *testing.T, got []string, want ...string) {
	t.Helper()
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// goFile builds a fixture file of package pkg with the given imports and body.
func goFile(pkg string, imports []string, body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "package %s\n\n", pkg)
	for _, imp := range imports {
		fmt.Fprintf(&b, "import %s\n", imp)
	}
	b.WriteString(body)
	return b.String()
}

func TestLintPurePackages(t *testing.T) {
	got := checkFixture(t, map[string]string{
		"internal/replica/a.go":     goFile("replica", []string{`"time"`, `"sync/atomic"`, `"math/rand/v2"`}, "var _ = time.Now\nvar _ atomic.Int64\nvar _ = rand.Int\n"),
		"internal/replica/b.go":     goFile("replica", []string{`"sort"`, `"example.com/fixture/internal/record"`}, "var _ = sort.Ints\nvar _ = record.X\n"),
		"internal/coord/group/g.go": goFile("group", []string{`"example.com/fixture/internal/clock"`, `"github.com/twmb/franz-go/pkg/kmsg"`}, "var _ = clock.Real\nvar _ kmsg.Request\n"),
		"internal/coord/c.go":       goFile("coord", []string{`"time"`}, "var _ = time.Now\n"),
	})
	requireViolations(t, got,
		"internal/replica/a.go:3 [pure]",
		"internal/replica/a.go:4 [pure]",
		"internal/replica/a.go:5 [pure]",
		"internal/coord/group/g.go:3 [pure]",
		"internal/coord/group/g.go:4 [pure]",
		"internal/coord/group/g.go:4 [edge-only]",
	)
}

func TestLintFileAccessOnlyInVFS(t *testing.T) {
	got := checkFixture(t, map[string]string{
		"internal/log/a.go":  goFile("log", []string{`"os"`}, "func f() {\n\tos.Open(\"x\")\n\t_ = os.Getenv(\"HOME\")\n}\n"),
		"internal/log/b.go":  goFile("log", []string{`sys "os"`}, "func g() { sys.WriteFile(\"x\", nil, 0) }\n"),
		"internal/vfs/v.go":  goFile("vfs", []string{`"os"`}, "func h() { os.OpenFile(\"x\", 0, 0) }\n"),
		"cmd/sluice/main.go": goFile("main", []string{`"os"`}, "func main() { os.Exit(len(os.Args)) }\n"),
		"cmd/sluice/gen.go":  "//go:build ignore\n\n" + goFile("main", []string{`"os"`}, "func main() { os.WriteFile(\"x\", nil, 0) }\n"),
	})
	requireViolations(t, got,
		"internal/log/a.go:5 [vfs-only]",
		"internal/log/b.go:4 [vfs-only]",
	)
}

func TestLintKafkaOnlyAtTheEdge(t *testing.T) {
	got := checkFixture(t, map[string]string{
		"internal/record/r.go": goFile("record", []string{`"github.com/twmb/franz-go/pkg/kerr"`}, "var _ = kerr.UnknownServerError\n"),
		"internal/api/a.go":    goFile("api", []string{`"github.com/twmb/franz-go/pkg/kmsg"`}, "var _ kmsg.Request\n"),
		"cmd/sluice/p.go":      goFile("main", []string{`"github.com/twmb/franz-go/pkg/kgo"`}, "var _ = kgo.NewClient\n"),
	})
	requireViolations(t, got, "internal/record/r.go:3 [edge-only]")
}

func TestLintLogKnowsNoReplication(t *testing.T) {
	got := checkFixture(t, map[string]string{
		"internal/log/a.go": goFile("log", []string{`"net/http"`, `"example.com/fixture/internal/replica"`, `"example.com/fixture/internal/vfs"`},
			"var _ = http.Get\nvar _ = replica.X\nvar _ = vfs.X\n"),
	})
	requireViolations(t, got,
		"internal/log/a.go:3 [log-isolated]",
		"internal/log/a.go:4 [layer]",
		"internal/log/a.go:4 [log-isolated]",
	)
}

func TestLintCompositionRoot(t *testing.T) {
	got := checkFixture(t, map[string]string{
		"internal/partition/p.go": goFile("partition", []string{`"example.com/fixture/internal/node"`}, "var _ = node.X\n"),
		"internal/netserver/s.go": goFile("netserver", []string{`"example.com/fixture/internal/api"`}, "var _ = api.X\n"),
		"internal/node/n.go":      goFile("node", []string{`"example.com/fixture/internal/api"`, `"example.com/fixture/internal/netserver"`}, "var _ = api.X\nvar _ = netserver.X\n"),
		"cmd/sluice/main.go":      goFile("main", []string{`"example.com/fixture/internal/node"`}, "var _ = node.X\n"),
	})
	requireViolations(t, got,
		"internal/netserver/s.go:3 [composition-root]",
		"internal/partition/p.go:3 [composition-root]",
		"internal/partition/p.go:3 [layer]",
	)
}

func TestLintReverseLayerImport(t *testing.T) {
	got := checkFixture(t, map[string]string{
		"internal/record/r.go":    goFile("record", []string{`"example.com/fixture/internal/log"`}, "var _ = log.X\n"),
		"internal/log/l.go":       goFile("log", []string{`"example.com/fixture/internal/record"`, `"example.com/fixture/internal/vfs/memfs"`}, "var _ = record.X\nvar _ = memfs.X\n"),
		"internal/vfs/memfs/m.go": goFile("memfs", []string{`"example.com/fixture/internal/vfs"`}, "var _ = vfs.X\n"),
	})
	requireViolations(t, got, "internal/record/r.go:3 [layer]")
}

func TestLintUnrankedPackage(t *testing.T) {
	got := checkFixture(t, map[string]string{
		"internal/frobnicate/f.go":  goFile("frobnicate", nil, ""),
		"internal/vfs/errorfs/e.go": goFile("errorfs", nil, ""),
	})
	requireViolations(t, got, "internal/frobnicate/f.go:1 [rank-table]")
}

// longFunc returns a fixture function whose body is n lines long, under doc.
func longFunc(name string, n int, doc string) string {
	var b strings.Builder
	b.WriteString(doc)
	fmt.Fprintf(&b, "func %s() {\n", name)
	for i := 0; i < n; i++ {
		b.WriteString("\t_ = 0\n")
	}
	b.WriteString("}\n\n")
	return b.String()
}

func TestLintFunctionLength(t *testing.T) {
	src := "package log\n\n" + // lines 1-2
		longFunc("fits", 70, "") + // func on line 3
		longFunc("tooLong", 71, "// tooLong does a lot.\n") + // func on line 77
		longFunc("explained", 90, "// explained dispatches.\n//\n// long: one case per API key\n") +
		longFunc("noReason", 71, "// long:\n") +
		"type T struct{}\n\n" +
		longFunc("(T) method", 80, "")
	got := checkFixture(t, map[string]string{"internal/log/l.go": src})
	requireViolations(t, got,
		"internal/log/l.go:77 [func-length]",
		"internal/log/l.go:248 [func-length]",
		"internal/log/l.go:324 [func-length]",
	)
}

func TestLintFunctionLengthMessageNamesMethod(t *testing.T) {
	src := "package log\n\ntype T[K any] struct{}\n\n" + longFunc("(t *T[K]) grow", 75, "")
	violations := check(fixtureModule, []sourceFile{{pkg: "internal/log", path: "internal/log/l.go", src: []byte(src)}})
	if len(violations) != 1 || !strings.Contains(violations[0].msg, "T.grow has a 75-line body") {
		t.Fatalf("got %v, want one report naming T.grow and its length", violations)
	}
}

func TestLintParseError(t *testing.T) {
	got := checkFixture(t, map[string]string{"internal/log/bad.go": "package log\n\nfunc {"})
	requireViolations(t, got, "internal/log/bad.go [parse]")
}

func TestLintModuleRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "go.mod"), []byte("// comment\nmodule example.com/m\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(root, "a", "b")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	found, err := findModuleRoot(deep)
	if err != nil || found != root {
		t.Fatalf("findModuleRoot = %q, %v; want %q", found, err, root)
	}
	module, err := modulePath(found)
	if err != nil || module != "example.com/m" {
		t.Fatalf("modulePath = %q, %v", module, err)
	}
}

// TestLintEveryRuleTableEntryIsRanked keeps the rule tables and the layer
// table in step: a package named by a rule but missing from the layers would
// only be noticed once someone created it.
func TestLintEveryRuleTableEntryIsRanked(t *testing.T) {
	tables := [][]string{purePackages, edgePackages, logForbidden, compositionOnly, compositionImporters, {filePackage, logPackage}}
	for _, table := range tables {
		for _, pkg := range table {
			if !strings.HasPrefix(pkg, "internal/") && pkg != "cmd" && pkg != "test" {
				continue // an outside import path, like "net"
			}
			if _, ok := rankOf(pkg); !ok {
				t.Errorf("%s is named by a rule but has no rank in layerRanks", pkg)
			}
		}
	}
}

// TestLintRankedPackagesExist keeps the layer table honest: a ranked package
// exists, and a planned one does not yet (once it does, it moves from
// plannedRanks to layerRanks, its place chosen on purpose).
func TestLintRankedPackagesExist(t *testing.T) {
	root, err := findModuleRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range layerRanks {
		_, planned := plannedRanks[pkg]
		info, err := os.Stat(filepath.Join(root, pkg))
		exists := err == nil && info.IsDir()
		switch {
		case planned && exists:
			t.Errorf("%s exists now: move it from plannedRanks to layerRanks", pkg)
		case !planned && !exists:
			t.Errorf("%s is ranked in layerRanks but does not exist: remove it, or list it in plannedRanks", pkg)
		}
	}
}
