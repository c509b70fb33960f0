package node

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/log"
	"github.com/sluicelog/sluice/internal/vfs"
)

func TestNodeSegmentFileBudget(t *testing.T) {
	for _, tc := range []struct {
		limit, connections int
		sealed, active     int
	}{
		{limit: 0, connections: 100, sealed: 0, active: 0}, // unknown: the log package's defaults
		// This machine's limit, no clients: 10,000 partitions keep their
		// active files open.
		{limit: 20000, connections: 0, sealed: 1024, active: 20000 - 768 - 1024},
		// One client counts as a step of 64.
		{limit: 20000, connections: 1, sealed: 1024, active: 20000 - 832 - 1024},
		{limit: 20000, connections: 64, sealed: 1024, active: 20000 - 832 - 1024},
		// 10,000 clients (rounded to 10,048) and a quarter more of room:
		// the sealed files' eighth drops below its cap.
		{limit: 20000, connections: 10000, sealed: 866, active: 6928 - 866},
		// A small limit keeps a quarter for the fixed reserve.
		{limit: 1024, connections: 0, sealed: 64, active: 448},
		// Nothing left: one of each, and opens shed idle files.
		{limit: 100, connections: 0, sealed: 1, active: 1},
		{limit: 20000, connections: 30000, sealed: 1, active: 1},
		{limit: 1 << 20, connections: 0, sealed: 1024, active: 1<<20 - 768 - 1024},
	} {
		t.Run(fmt.Sprintf("limit=%d/connections=%d", tc.limit, tc.connections), func(t *testing.T) {
			sealed, active := segmentFileBudget(tc.limit, tc.connections, 0)
			if sealed != tc.sealed || active != tc.active {
				t.Fatalf("got sealed %d, active %d; want %d, %d", sealed, active, tc.sealed, tc.active)
			}
		})
	}
}

// TestNodeSegmentFileBudgetShrinksWithConnections: more connections never
// give segment files more room, and the budget plus the connections stay
// within the limit while any room is left.
func TestNodeSegmentFileBudgetShrinksWithConnections(t *testing.T) {
	const limit = 20000
	prevSealed, prevActive := segmentFileBudget(limit, 0, 0)
	for connections := 1; connections <= 25000; connections += 7 {
		sealed, active := segmentFileBudget(limit, connections, 0)
		if sealed > prevSealed || active > prevActive {
			t.Fatalf("%d connections: sealed %d, active %d, more than %d, %d with fewer", connections, sealed, active, prevSealed, prevActive)
		}
		if sealed+active > 2 && sealed+active+connections > limit {
			t.Fatalf("%d connections: sealed %d + active %d + connections past the limit %d", connections, sealed, active, limit)
		}
		prevSealed, prevActive = sealed, active
	}
}

// TestNodeSegmentFileBudgetSteadyUnderChurn: a connection count going
// back and forth across a multiple of connectionStep moves the bounds
// once, not on every crossing (each lowering closes a step's worth of
// idle segment files, fsyncing the unsynced ones); a real rise or fall
// still moves them.
func TestNodeSegmentFileBudgetSteadyUnderChurn(t *testing.T) {
	var b connectionBudget
	moves := 0
	for i := range 1000 {
		if b.fit(64 + i%2) { // 64, 65, 64, 65, ...
			moves++
		}
	}
	if moves != 2 || b.connections != 128 {
		t.Fatalf("1,000 crossings of 64 moved the budget %d times, to %d connections; want twice, to 128", moves, b.connections)
	}
	for _, step := range []struct{ connections, want int }{
		{129, 192}, // a rise moves it at once
		{128, 192}, // one step below: kept
		{64, 64},   // two below: given back
		{129, 192},
		{0, 0},   // everyone left
		{1, 64},  // one client takes a step
		{0, 64},  // and its leaving keeps it
		{-1, 64}, // nonsense counts as none
		{10000, 10048},
	} {
		b.fit(step.connections)
		if b.connections != step.want {
			t.Fatalf("%d connections: budgeted for %d, want %d", step.connections, b.connections, step.want)
		}
	}
}

// TestNodeFitSegmentFilesFollowsConnections: the node's file cache bounds
// follow the connection count each time it is signalled.
func TestNodeFitSegmentFilesFollowsConnections(t *testing.T) {
	logs, err := log.OpenManager(log.ManagerOptions{FS: vfs.NewMem(), Dir: "/data", Config: log.DefaultConfig(), Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var connections atomic.Int64
	changed := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		fitSegmentFiles(ctx, 20000, changed, nil, time.Minute, func() int { return int(connections.Load()) }, logs)
	}()
	defer func() { cancel(); <-done }()
	for _, n := range []int{10000, 0, 64} {
		connections.Store(int64(n))
		changed <- struct{}{}
		wantSealed, wantActive := segmentFileBudget(20000, n, 0)
		eventually(t, 5*time.Second, fmt.Sprintf("bounds for %d connections", n), func() bool {
			sealed, active := logs.OpenSegmentLimits()
			return sealed == wantSealed && active == wantActive
		})
	}
}

// TestNodeSegmentFileBudgetFollowsClients: a running node shrinks its
// segment file budget as clients connect and grows it back as they
// leave.
func TestNodeSegmentFileBudgetFollowsClients(t *testing.T) {
	limit := vfs.DescriptorLimit()
	if limit <= 0 {
		t.Skip("descriptor limit unknown: the node keeps the defaults")
	}
	n := startNode(t, t.TempDir())
	_, idle := n.logs.OpenSegmentLimits()
	const clients = 100 // two steps of 64
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range clients {
		c, err := net.DialTimeout("tcp", n.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The bound moves once 65 clients are in. Wait for all of them: one
	// accepted only after the others left would take a step of 64 again,
	// which its leaving keeps (connectionBudget), and the bound would not
	// come back.
	_, want := segmentFileBudget(limit, clients, 0)
	eventually(t, 10*time.Second, fmt.Sprintf("active bound %d with %d clients accepted", want, clients), func() bool {
		_, active := n.logs.OpenSegmentLimits()
		return n.server.NumConnections() == clients && active == want
	})
	if want >= idle {
		t.Fatalf("%d clients left the bound at %d, from %d with none", clients, want, idle)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	_, back := segmentFileBudget(limit, 0, 0)
	eventually(t, 10*time.Second, "the bound back once the clients left", func() bool {
		_, active := n.logs.OpenSegmentLimits()
		return active == back
	})
}

// TestNodeSegmentFileBudgetAfterFailedAccepts: each failed accept brings
// the bounds a step below the segment files open, however far above them
// the bounds were, so that it closes idle files, down to a floor
// (TestNodeSegmentFileBudgetShortageFloor).
func TestNodeSegmentFileBudgetAfterFailedAccepts(t *testing.T) {
	const limit, connections = 20000, 100
	shortfall := 0
	for _, open := range []int{400, 336, 272} {
		shortfall = shortfallAfterFailedAccept(limit, connections, shortfall, open)
		sealed, active := segmentFileBudget(limit, connections, shortfall)
		if !(sealed+active == open-connectionStep) {
			t.Fatalf("%d files open: bounds %d + %d after a failed accept, want %d in all", open, sealed, active, open-connectionStep)
		}
	}
	// Bounds already a step below the files open (the cache could not
	// close them yet: in use) still come down a step.
	sealed, active := segmentFileBudget(limit, connections, shortfall)
	next := shortfallAfterFailedAccept(limit, connections, shortfall, sealed+active+connectionStep+10)
	if !(next == shortfall+connectionStep) {
		t.Fatalf("shortfall %d after %d, want a step more", next, shortfall)
	}
}

// TestNodeSegmentFileBudgetShortageFloor: failed accepts one after the
// other used to bring the bounds down to one file of each kind for a
// minute, so that every append reopened its file (and every read of a
// sealed segment reloaded its indexes). They stop at a floor: an open
// that finds no descriptor sheds idle files itself, so the floor costs
// no accept a descriptor the cache could give back. Connections alone
// may still take the bounds lower (sockets cannot be closed).
func TestNodeSegmentFileBudgetShortageFloor(t *testing.T) {
	for _, limit := range []int{20000, 1024, 100000} {
		const connections = 100
		shortfall := 0
		for range 2000 {
			sealed, active := segmentFileBudget(limit, connections, shortfall)
			shortfall = shortfallAfterFailedAccept(limit, connections, shortfall, sealed+active)
		}
		sealed, active := segmentFileBudget(limit, connections, shortfall)
		if !(sealed+active == minSegmentFilesInShortage && sealed == minSegmentFilesInShortage/8) {
			t.Fatalf("limit %d: bounds %d, %d after 2,000 failed accepts, want %d files in all, an eighth sealed",
				limit, sealed, active, minSegmentFilesInShortage)
		}
	}
	// Below the floor already: a shortfall takes nothing more.
	sealed, active := segmentFileBudget(512, 0, 0)
	if s, a := segmentFileBudget(512, 0, 400); s != sealed || a != active {
		t.Fatalf("limit 512: bounds %d, %d with a shortfall, want %d, %d as without", s, a, sealed, active)
	}
	if s, a := segmentFileBudget(20000, 30000, 20000); s != 1 || a != 1 {
		t.Fatalf("connections past the limit: bounds %d, %d, want 1, 1", s, a)
	}
}

// fakeSegmentFiles is a file cache holding open files up to its bounds:
// lowering them closes the excess, as the cache closes idle files.
type fakeSegmentFiles struct {
	mu                   sync.Mutex
	sealed, active       int // files open
	sealedMax, activeMax int // bounds
}

func (f *fakeSegmentFiles) OpenFiles() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sealed
}

func (f *fakeSegmentFiles) OpenActiveFiles() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

func (f *fakeSegmentFiles) SetOpenSegmentLimits(sealed, active int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sealedMax, f.activeMax = sealed, active
	f.sealed, f.active = min(f.sealed, sealed), min(f.active, active)
}

func (f *fakeSegmentFiles) state() (open, bounds int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sealed + f.active, f.sealedMax + f.activeMax
}

// TestNodeFitSegmentFilesShrinksOnAFailedAccept: a failed accept had no
// effect on the segment file budget, so the cache kept every descriptor
// and the listener retried in vain until a client left. Now each one
// closes a step of the open files, the budget stays lowered while
// clients come and go, and it grows back once no accept failed for a
// while.
func TestNodeFitSegmentFilesShrinksOnAFailedAccept(t *testing.T) {
	const limit = 20000
	files := &fakeSegmentFiles{sealed: 1000, active: 5000}
	var connections atomic.Int64
	changed, shortage := make(chan struct{}, 1), make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	const forget = 300 * time.Millisecond
	go func() {
		defer close(done)
		fitSegmentFiles(ctx, limit, changed, shortage, forget, func() int { return int(connections.Load()) }, files)
	}()
	defer func() { cancel(); <-done }()

	connections.Store(10)
	changed <- struct{}{}
	full0, full1 := segmentFileBudget(limit, 10, 0)
	eventually(t, 5*time.Second, "the bounds for 10 connections", func() bool {
		_, bounds := files.state()
		return bounds == full0+full1
	})
	for range 3 {
		before, _ := files.state()
		shortage <- struct{}{}
		want := before - connectionStep
		eventually(t, 5*time.Second, fmt.Sprintf("bounds of %d files, from %d open, after a failed accept", want, before), func() bool {
			open, bounds := files.state()
			return bounds == want && open <= bounds
		})
	}
	_, lowered := files.state()
	// Clients arrive: the budget keeps the shortfall.
	connections.Store(200)
	changed <- struct{}{}
	full0, full1 = segmentFileBudget(limit, 200, 0)
	eventually(t, 5*time.Second, "the bounds for 200 connections, with the shortfall", func() bool {
		_, bounds := files.state()
		return bounds < lowered && bounds < full0+full1
	})
	eventually(t, 5*time.Second+forget, "the bounds back once no accept failed for a while", func() bool {
		_, bounds := files.state()
		return bounds == full0+full1
	})
}

// TestNodeFailedAcceptShrinksSegmentFiles: a running node's listener
// reports a failed accept to the segment file budget, which comes down
// below the files open, or to the shortage floor (128 files) when fewer
// are open, as in this node.
func TestNodeFailedAcceptShrinksSegmentFiles(t *testing.T) {
	if vfs.DescriptorLimit() <= 0 {
		t.Skip("descriptor limit unknown: the node keeps the defaults")
	}
	n := startNode(t, t.TempDir())
	sealed, active := n.logs.OpenSegmentLimits()
	open := n.logs.OpenFiles() + n.logs.OpenActiveFiles()
	if sealed+active <= open {
		t.Fatalf("bounds %d, %d with %d files open: nothing to lower", sealed, active, open)
	}
	n.netserverConfig().DescriptorShortage()
	eventually(t, 10*time.Second, "the bounds below the files open", func() bool {
		sealed, active := n.logs.OpenSegmentLimits()
		return sealed+active <= max(open-connectionStep, minSegmentFilesInShortage)
	})
}
