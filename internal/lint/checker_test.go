package lint

import (
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// sourceFile is one non-test Go file of the module.
type sourceFile struct {
	pkg  string // package directory relative to the module root: "internal/log"
	path string // file path relative to the module root, for messages
	src  []byte
}

// violation is one broken rule at one place.
type violation struct {
	pos  string // path:line
	rule string
	msg  string
}

func (v violation) String() string {
	return fmt.Sprintf("%s: [%s] %s", v.pos, v.rule, v.msg)
}

// checker applies the rules of rules_test.go to a set of files.
type checker struct {
	module     string // module path, from go.mod
	fset       *token.FileSet
	violations []violation
	firstFile  map[string]string // package -> the first file seen, for package-level reports
}

// check runs every rule over files and returns the violations sorted by
// position, so the report reads like a compiler's.
func check(module string, files []sourceFile) []violation {
	c := &checker{module: module, fset: token.NewFileSet(), firstFile: map[string]string{}}
	for _, f := range files {
		c.checkFile(f)
	}
	c.checkRanked()
	sort.Slice(c.violations, func(i, j int) bool {
		return c.violations[i].String() < c.violations[j].String()
	})
	return c.violations
}

func (c *checker) report(pos token.Pos, rule, format string, args ...any) {
	p := c.fset.Position(pos)
	c.violations = append(c.violations, violation{
		pos:  fmt.Sprintf("%s:%d", p.Filename, p.Line),
		rule: rule,
		msg:  fmt.Sprintf(format, args...),
	})
}

func (c *checker) checkFile(f sourceFile) {
	file, err := parser.ParseFile(c.fset, f.path, f.src, parser.ParseComments)
	if err != nil {
		c.violations = append(c.violations, violation{pos: f.path, rule: "parse", msg: err.Error()})
		return
	}
	if buildIgnored(file) {
		return
	}
	if _, seen := c.firstFile[f.pkg]; !seen {
		c.firstFile[f.pkg] = f.path
	}
	for _, spec := range file.Imports {
		imp, err := strconv.Unquote(spec.Path.Value)
		if err == nil {
			c.checkImport(f.pkg, imp, spec.Pos())
		}
	}
	c.checkFileAccess(f.pkg, file)
	c.checkFuncLengths(file)
}

// buildIgnored reports whether the file is excluded with an "ignore" build
// tag: by convention a generator or tool run with `go run`, not part of the
// package.
func buildIgnored(file *ast.File) bool {
	for _, group := range file.Comments {
		if group.Pos() > file.Package {
			break
		}
		for _, comment := range group.List {
			expr, err := constraint.Parse(comment.Text)
			if err == nil && mentionsTag(expr, "ignore") {
				return true
			}
		}
	}
	return false
}

func mentionsTag(expr constraint.Expr, tag string) bool {
	switch x := expr.(type) {
	case *constraint.TagExpr:
		return x.Tag == tag
	case *constraint.NotExpr:
		return mentionsTag(x.X, tag)
	case *constraint.AndExpr:
		return mentionsTag(x.X, tag) || mentionsTag(x.Y, tag)
	case *constraint.OrExpr:
		return mentionsTag(x.X, tag) || mentionsTag(x.Y, tag)
	}
	return false
}

// within reports whether p is root or below it, by path element.
func within(p, root string) bool {
	return p == root || strings.HasPrefix(p, root+"/")
}

func withinAny(p string, roots []string) bool {
	for _, root := range roots {
		if within(p, root) {
			return true
		}
	}
	return false
}

// internalPath returns imp relative to the module root, if it is one of the
// module's own packages.
func (c *checker) internalPath(imp string) (string, bool) {
	if imp == c.module {
		return ".", true
	}
	rel, ok := strings.CutPrefix(imp, c.module+"/")
	return rel, ok
}

// checkImport applies the import rules to one import of pkg.
func (c *checker) checkImport(pkg, imp string, pos token.Pos) {
	if withinAny(pkg, purePackages) && c.importMatches(imp, pureForbidden) {
		c.report(pos, "pure", "pure package %s imports %s; pass time as nowMs and randomness as a source, and leave I/O to a driver", pkg, imp)
	}
	if within(imp, kafkaClientLibrary) && !withinAny(pkg, edgePackages) {
		c.report(pos, "edge-only", "%s imports %s; only the edge packages speak Kafka", pkg, imp)
	}
	if within(pkg, logPackage) && c.importMatches(imp, logForbidden) {
		c.report(pos, "log-isolated", "%s imports %s; the log knows nothing of replication or networking", pkg, imp)
	}
	if target, internal := c.internalPath(imp); internal {
		c.checkInternalImport(pkg, target, pos)
	}
}

// importMatches reports whether imp falls under one of patterns. A pattern
// starting with "internal/" names the module's own packages, relative to the
// module root; any other is an import path outside the module.
func (c *checker) importMatches(imp string, patterns []string) bool {
	target, internal := c.internalPath(imp)
	for _, pattern := range patterns {
		own := strings.HasPrefix(pattern, "internal/")
		if own && internal && within(target, pattern) || !own && !internal && within(imp, pattern) {
			return true
		}
	}
	return false
}

func (c *checker) checkInternalImport(pkg, target string, pos token.Pos) {
	for _, root := range compositionOnly {
		if within(target, root) && !within(pkg, root) && !withinAny(pkg, compositionImporters) {
			c.report(pos, "composition-root", "%s imports %s; only node and cmd may import node, netserver and api", pkg, target)
		}
	}
	pkgRank, pkgOK := rankOf(pkg)
	targetRank, targetOK := rankOf(target)
	if pkgOK && targetOK && pkgRank < targetRank {
		c.report(pos, "layer", "%s (rank %d) imports %s (rank %d); a package may only import its own layer or lower ones",
			pkg, pkgRank, target, targetRank)
	}
}

// rankOf returns the rank of pkg's nearest listed ancestor in layerRanks.
func rankOf(pkg string) (int, bool) {
	for p := pkg; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if rank, ok := layerRanks[p]; ok {
			return rank, true
		}
	}
	return 0, false
}

// checkRanked reports each package that the layer table does not place.
func (c *checker) checkRanked() {
	for pkg, file := range c.firstFile {
		if _, ok := rankOf(pkg); !ok {
			c.violations = append(c.violations, violation{
				pos:  file + ":1",
				rule: "rank-table",
				msg:  fmt.Sprintf("package %s has no layer rank; add it to layerRanks in internal/lint/rules_test.go", pkg),
			})
		}
	}
}

// checkFileAccess flags calls such as os.Open outside the vfs package. It
// follows a renamed import of os; a local variable shadowing the name os
// would confuse it, and would be a worse problem than a false report.
func (c *checker) checkFileAccess(pkg string, file *ast.File) {
	if within(pkg, filePackage) {
		return
	}
	osName := importName(file, "os")
	if osName == "" {
		return
	}
	ast.Inspect(file, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == osName && osFileFuncs[sel.Sel.Name] {
			c.report(sel.Pos(), "vfs-only", "os.%s in %s; only %s touches files: take a vfs.FS", sel.Sel.Name, pkg, filePackage)
		}
		return true
	})
}

// importName returns the name under which file imports imp, or "" if it does
// not (or imports it blank or with a dot).
func importName(file *ast.File, imp string) string {
	for _, spec := range file.Imports {
		if p, err := strconv.Unquote(spec.Path.Value); err != nil || p != imp {
			continue
		}
		if spec.Name == nil {
			return path.Base(imp)
		}
		if spec.Name.Name != "_" && spec.Name.Name != "." {
			return spec.Name.Name
		}
	}
	return ""
}

// checkFuncLengths flags function bodies longer than maxFuncLines lines
// unless their doc comment gives a reason with "long:".
func (c *checker) checkFuncLengths(file *ast.File) {
	for _, decl := range file.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		lines := c.fset.Position(fn.Body.Rbrace).Line - c.fset.Position(fn.Body.Lbrace).Line - 1
		if lines > maxFuncLines && !hasLongReason(fn.Doc) {
			c.report(fn.Pos(), "func-length", "%s has a %d-line body (limit %d); split it, or say why above it with `// long: reason`",
				funcName(fn), lines, maxFuncLines)
		}
	}
}

// hasLongReason reports whether doc has a line "long: <reason>" with a
// non-empty reason.
func hasLongReason(doc *ast.CommentGroup) bool {
	if doc == nil {
		return false
	}
	for _, line := range strings.Split(doc.Text(), "\n") {
		_, reason, found := strings.Cut(line, "long:")
		if found && strings.TrimSpace(reason) != "" {
			return true
		}
	}
	return false
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	recv := fn.Recv.List[0].Type
	if star, ok := recv.(*ast.StarExpr); ok {
		recv = star.X
	}
	if generic, ok := recv.(*ast.IndexExpr); ok {
		recv = generic.X
	} else if generic, ok := recv.(*ast.IndexListExpr); ok {
		recv = generic.X
	}
	if id, ok := recv.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}

// findModuleRoot walks up from dir to the directory holding go.mod.
func findModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// modulePath reads the module path from the go.mod in root.
func modulePath(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("%s/go.mod has no module line", root)
}

// loadModule reads every non-test Go file of the module at root, skipping
// testdata, vendor, hidden and underscore directories, and nested modules,
// as the go command does.
func loadModule(root string) ([]sourceFile, error) {
	var files []sourceFile
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return skipDir(root, p, d.Name())
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		files = append(files, sourceFile{pkg: path.Dir(rel), path: rel, src: src})
		return nil
	})
	return files, err
}

func skipDir(root, p, name string) error {
	if p == root {
		return nil
	}
	if name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return filepath.SkipDir
	}
	if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
		return filepath.SkipDir
	}
	return nil
}
