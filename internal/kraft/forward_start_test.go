package kraft

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestForwardBeforeStartReturnsWaits checks that a command forwarded to
// a node whose raft.Start is still running (it serves forwards before it
// returns the node) waits for the node instead of reaching a nil one.
func TestForwardBeforeStartReturnsWaits(t *testing.T) {
	cp := &ControlPlane{started: make(chan struct{})}
	payload, err := encodeForward(DeleteACLs{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := cp.handleForward(ctx, payload); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("forward before the node was set: %v, want the caller's deadline", err)
	}
}
