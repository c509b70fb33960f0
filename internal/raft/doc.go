// Package raft is the driver around go.etcd.io/raft/v3 (imported here as
// etcdraft) that replicates the metadata log among the controllers, as the
// raft module of Kafka's KRaft does. It replicates opaque entries: what they
// mean is the StateMachine's business (internal/kraft applies them with
// internal/metadata and decides with internal/controller), not this
// package's. Kafka calls its own implementation raft too; ours does not
// implement the algorithm, it drives etcd's deterministic one.
//
// The pieces:
//   - Storage keeps Raft's log in internal/log segments (one record batch per
//     entry, the term in the batch's partition leader epoch), the hard state
//     in a small file replaced atomically, and snapshots in checkpoint files;
//   - core is the single-threaded driver state around etcdraft.RawNode: it handles
//     each Ready in the order Raft requires (persist, then send, then apply,
//     then Advance) and matches proposals to the log indexes they commit at.
//     It does no I/O of its own beyond Storage and the Transport, so the
//     simulation drives several cores in one goroutine from one seed;
//   - Node owns one core in one goroutine, fed by the clock's ticker, the
//     transport and local proposals;
//   - Transport carries frames between members: TCPTransport in production,
//     an in-memory network in tests.
//
// Invariants:
//   - entries, the hard state's term and vote, and a received snapshot are
//     durable before any message that depends on them is sent;
//   - StateMachine.Apply sees every committed normal entry exactly once per
//     incarnation, in index order, on every member; after a restart it
//     starts again from the newest snapshot (Restore) and the log after it;
//   - a Propose that returns an index without error has been committed at
//     that index and applied on this node.
package raft
