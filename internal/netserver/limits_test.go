package netserver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/quota"
)

// TestNetserverMaxConnectionsPerIP: the connection over the per-address
// limit is closed right after accept and counted; an override raises the
// limit for its address; a closed connection frees its place.
func TestNetserverMaxConnectionsPerIP(t *testing.T) {
	h := newTestHandler()
	s := startServer(t, Config{MaxConnectionsPerIP: 2}, h)
	a, b := dial(t, s), dial(t, s)
	a.roundTrip(1)
	b.roundTrip(2)
	dial(t, s).expectClosed()
	if got := s.RefusedConnections()[RefusedMaxConnectionsPerIP]; got != 1 {
		t.Fatalf("refused per IP = %d, want 1", got)
	}
	a.nc.Close()
	eventually(t, "closed connection unregistered", func() bool { return s.NumConnections() == 1 })
	dial(t, s).roundTrip(3)

	over := startServer(t, Config{MaxConnectionsPerIP: 1, MaxConnectionsPerIPOverrides: map[string]int{"127.0.0.1": 3}}, h)
	for i := range 3 {
		dial(t, over).roundTrip(uint32(10 + i))
	}
	dial(t, over).expectClosed()

	// Kafka's max.connections.per.ip=0: only overridden addresses.
	none := startServer(t, Config{MaxConnectionsPerIP: -1}, h)
	dial(t, none).expectClosed()
}

// TestNetserverIPConnectionRate: an ip connection_creation_rate quota
// closes the connections that put the address over it.
func TestNetserverIPConnectionRate(t *testing.T) {
	h := newTestHandler()
	// 1 connection a second over (2-1) windows of 1 s: the first
	// connection is within it, the second is not.
	s := startServer(t, Config{QuotaWindow: quota.WindowConfig{Samples: 2, WindowMs: 1000},
		IPConnectionRate: func(ip string) (float64, bool) { return 1, ip == "127.0.0.1" }}, h)
	dial(t, s).roundTrip(1)
	dial(t, s).expectClosed()
	if got := s.RefusedConnections()[RefusedIPConnectionRate]; got != 1 {
		t.Fatalf("refused by rate = %d, want 1", got)
	}
}

// TestNetserverThrottleMutesConnection: a handler that throttles its
// connection gets its response out at once, and the next request on that
// connection is served only after the mute; other connections are not
// held up.
func TestNetserverThrottleMutesConnection(t *testing.T) {
	const mute = 300 * time.Millisecond
	var mu sync.Mutex
	served := map[byte]time.Time{}
	s := startServer(t, Config{}, handlerFunc(func(ctx context.Context, addr string, f []byte) (Response, error) {
		mu.Lock()
		served[f[3]] = time.Now()
		mu.Unlock()
		if f[4] == opBlock { // "throttle me"
			quota.ThrottleChannel(ctx, mute.Milliseconds(), true)
		}
		return testResponses.idResponse(uint32(f[3])), nil
	}))
	c := dial(t, s)
	c.send(frame(payload(1, opBlock, 0)), frame(payload(2, opSlow, 0)))
	sent := time.Now()
	if id := c.readID(); id != 1 {
		t.Fatalf("response %d, want 1", id)
	}
	if time.Since(sent) >= mute {
		t.Fatalf("the throttled response itself waited %v", time.Since(sent))
	}
	other := dial(t, s)
	other.send(frame(payload(3, opSlow, 0)))
	if id := other.readID(); id != 3 {
		t.Fatalf("other connection: response %d", id)
	}
	if id := c.readID(); id != 2 {
		t.Fatalf("response %d, want 2", id)
	}
	mu.Lock()
	defer mu.Unlock()
	if served[3].After(served[2]) {
		t.Fatalf("the other connection waited for the mute: served at %v, the muted one's next at %v", served[3], served[2])
	}
	if gap := served[2].Sub(served[1]); gap < mute {
		t.Fatalf("next request served %v after the throttled one, want at least %v", gap, mute)
	}
}

var testResponses responses

// TestNetserverThrottleHoldsOldResponses: for a client older than KIP-219
// the throttled response itself is held back for the throttle time.
func TestNetserverThrottleHoldsOldResponses(t *testing.T) {
	const delay = 300 * time.Millisecond
	s := startServer(t, Config{}, handlerFunc(func(ctx context.Context, addr string, f []byte) (Response, error) {
		quota.ThrottleChannel(ctx, delay.Milliseconds(), false)
		return testResponses.idResponse(uint32(f[3])), nil
	}))
	c := dial(t, s)
	sent := time.Now()
	c.send(frame(payload(7, opSlow, 0)))
	if id := c.readID(); id != 7 {
		t.Fatalf("response %d, want 7", id)
	}
	if waited := time.Since(sent); waited < delay {
		t.Fatalf("the response came after %v, want at least %v", waited, delay)
	}
}
