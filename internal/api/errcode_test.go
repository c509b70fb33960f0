package api

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicelog/sluice/internal/controller"
)

// domainErrorPackages are the packages whose exported Err* sentinels reach
// the handlers, by import name and directory.
var domainErrorPackages = map[string]string{
	"log":        "../log",
	"record":     "../record",
	"partition":  "../partition",
	"controller": "../controller",
	"coord":      "../coord",
	"auth":       "../auth",

	// Share groups.
	"sharegroup": "../coord/sharegroup",
	"share":      "../share",
}

// TestErrorCodesMapEveryDomainError: every exported Err* variable of the
// domain packages has a row in errorCodes (a new sentinel without one would
// silently become UNKNOWN_SERVER_ERROR), and every row gives its own code
// (no earlier row shadows it).
func TestErrorCodesMapEveryDomainError(t *testing.T) {
	mapped := errorTableNames(t)
	for pkg, dir := range domainErrorPackages {
		for _, name := range exportedErrorVars(t, dir) {
			if !mapped[pkg+"."+name] {
				t.Errorf("%s.%s has no row in errorCodes (errcode.go)", pkg, name)
			}
		}
	}
	// The controller lists its errors itself; each must match a row.
	for _, err := range controller.Errors {
		found := false
		for _, row := range errorCodes {
			found = found || errors.Is(err, row.err)
		}
		if !found {
			t.Errorf("controller error %v has no row in errorCodes", err)
		}
	}
	for _, e := range errorCodes {
		if got := errorCode(e.err); got != e.code.Code {
			t.Errorf("%v maps to %v, but its row says %v: an earlier row shadows it", e.err, kerr.ErrorForCode(got), e.code)
		}
	}
}

// errorTableNames is every pkg.Name the errorCodes table in errcode.go
// refers to.
func errorTableNames(t *testing.T) map[string]bool {
	t.Helper()
	file, err := parser.ParseFile(token.NewFileSet(), "errcode.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	ast.Inspect(file, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != "errorCodes" {
			return true
		}
		ast.Inspect(vs, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok {
					names[pkg.Name+"."+sel.Sel.Name] = true
				}
			}
			return true
		})
		return false
	})
	if len(names) == 0 {
		t.Fatal("no errorCodes table in errcode.go")
	}
	return names
}

// exportedErrorVars lists the package-level exported variables named Err*
// in dir's non-test files.
func exportedErrorVars(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if len(id.Name) > 3 && strings.HasPrefix(id.Name, "Err") && unicode.IsUpper(rune(id.Name[3])) {
						names = append(names, id.Name)
					}
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("no Err* variables in %s", dir)
	}
	return names
}
