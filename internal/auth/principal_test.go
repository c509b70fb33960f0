package auth

import (
	"context"
	"testing"
)

func TestFromContextDefaultsToAnonymous(t *testing.T) {
	if got := FromContext(context.Background()); got != Anonymous || got.String() != "User:ANONYMOUS" {
		t.Fatalf("FromContext(empty) = %v, want User:ANONYMOUS", got)
	}
	ctx := WithPrincipal(context.Background(), User("alice"))
	if got := FromContext(ctx); got.String() != "User:alice" || got.IsAnonymous() {
		t.Fatalf("FromContext = %v, want User:alice", got)
	}
}
