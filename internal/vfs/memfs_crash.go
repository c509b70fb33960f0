package vfs

import (
	"maps"
	"math/rand/v2"
	"slices"
)

// Crash simulates power loss and a restart: afterwards the tree holds only
// what was durable, plus a random part of what was not, and every handle
// opened before the crash fails with ErrStaleHandle. The FS stays usable, so
// a test can reopen whatever it was testing on the same MemFS.
//
// What survives:
//   - A directory holds exactly its entries as of its last SyncDir (all
//     later creations, removals and renames in it are undone). Only nodes
//     reachable from the root through such entries exist afterwards.
//   - A file holds its bytes as of its last Sync (or the last SyncFS of a
//     FileSystemSyncer, which syncs every file), then a prefix (possibly
//     empty, possibly all) of the writes and truncates made since, applied
//     in order; the last write in that prefix may be torn, keeping only its
//     first bytes.
//
// The same rng state on the same history always gives the same result.
func (m *MemFS) Crash(rng *rand.Rand) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.root = crashTree(m.root, rng)
	m.epoch++
}

// CrashClone returns a new MemFS holding what Crash would leave, and leaves
// m untouched. A test can run a workload once and check recovery from many
// crash outcomes. Given the same rng state, Crash and CrashClone agree.
func (m *MemFS) CrashClone(rng *rand.Rand) *MemFS {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return &MemFS{root: crashTree(m.root, rng), strictMkdir: m.strictMkdir}
}

// crashTree builds the post-crash tree as fresh nodes, sharing nothing with
// the old one, so old handles cannot reach it and a clone cannot disturb the
// original.
func crashTree(root *memNode, rng *rand.Rand) *memNode {
	c := crasher{rng: rng, done: map[*memNode]*memNode{}}
	return c.node(root)
}

// crasher remembers nodes already rebuilt, so a file reachable under two
// names (a rename half made durable) stays one file.
type crasher struct {
	rng  *rand.Rand
	done map[*memNode]*memNode
}

func (c *crasher) node(n *memNode) *memNode {
	if out, ok := c.done[n]; ok {
		return out
	}
	if !n.isDir {
		data := c.fileContent(n)
		out := &memNode{data: data, synced: slices.Clone(data)}
		c.done[n] = out
		return out
	}
	out := newDirNode()
	c.done[n] = out
	// Sorted, so the rng is consumed in the same order on every run.
	for _, name := range slices.Sorted(maps.Keys(n.syncedChildren)) {
		child := c.node(n.syncedChildren[name])
		out.children[name] = child
		out.syncedChildren[name] = child
	}
	return out
}

// fileContent is the synced bytes plus a random prefix of the pending
// operations, the last kept write possibly torn.
func (c *crasher) fileContent(n *memNode) []byte {
	data := slices.Clone(n.synced)
	keep := c.rng.IntN(len(n.pending) + 1)
	for i, op := range n.pending[:keep] {
		if i == keep-1 && !op.truncate && c.rng.IntN(2) == 0 {
			op.data = op.data[:c.rng.IntN(len(op.data))]
		}
		data = applyOp(data, op)
	}
	return data
}
