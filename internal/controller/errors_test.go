package controller

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

// TestControllerErrorsListed checks every exported Err variable is in
// Errors, the list the edge's error-code table is tested against, and
// that each names its Kafka code in its comment.
func TestControllerErrorsListed(t *testing.T) {
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range file.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.VAR {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for _, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Err") || name.Name == "Errors" {
					continue
				}
				names = append(names, name.Name)
				if vs.Doc == nil || !strings.Contains(vs.Doc.Text(), "Kafka: ") {
					t.Errorf("%s: comment does not name its Kafka code", name.Name)
				}
			}
		}
	}
	if len(names) != len(Errors) {
		t.Errorf("errors.go declares %d errors, Errors lists %d", len(names), len(Errors))
	}
	for i, e := range Errors {
		if slices.Index(Errors, e) != i {
			t.Errorf("%v listed twice", e)
		}
	}
}

// badIDs returns unusable ids before a good one.
type badIDs struct {
	ids []metadata.UUID
}

func (b *badIDs) NewUUID() metadata.UUID {
	id := b.ids[0]
	b.ids = b.ids[1:]
	return id
}

func TestControllerTopicIDRedrawn(t *testing.T) {
	cl := newCluster(t, DefaultConfig())
	cl.addBrokers("1")
	first := cl.createTopic("a", 1, 1).ID
	good := metadata.UUID{0x10, 9}
	cl.c.ids = &badIDs{ids: []metadata.UUID{
		{},        // zero: Kafka's "no id"
		{0xf8, 1}, // base64 would start with '-'
		first,     // in use
		good,
	}}
	if got := cl.createTopic("b", 1, 1).ID; got != good {
		t.Errorf("id %x, want %x", got, good)
	}
}
