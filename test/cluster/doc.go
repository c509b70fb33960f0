// Package cluster holds Sluice's cluster tests: each starts three real
// `sluice serve` processes on loopback (one Raft voter and broker each),
// injects faults — kill -9 and restart, SIGSTOP/SIGCONT, a leader cut off
// from its peers — while franz-go clients produce and consume, and then
// checks the history: every record acknowledged with acks=all is read back
// exactly once, at its acknowledged offset, in each producer's send order
// per partition (CheckHistory, unit-tested on its own as TestHistory*).
//
// Network faults go through test/cluster/faultproxy: with clusterOpts
// proxied, every quorum link and every peer's way to a node's client port
// passes through a proxy that can blackhole, drop or delay it, while the
// test's own clients dial the nodes directly. All traffic stays on
// 127.0.0.0/8 and needs no root.
//
// Invariants of the harness: the binary is built once (or taken from
// SLUICE_BIN); every child is killed when its test ends, when TestMain
// exits, and by the kernel if the test binary dies (Pdeathsig); every wait
// is bounded; each node's stderr goes to a file under the test's temp dir,
// and its tail is logged when the test fails; a node's ready line must
// name the address it was given.
//
// Environment:
//
//	SLUICE_BIN=path          test this binary instead of building ./cmd/sluice
//	SLUICE_CLUSTER_SEED=n    replay a run: each test logs its seed (go test -v)
//	SLUICE_LONG_TESTS=1      the long forms: more rounds of each fault
//	SLUICE_CLUSTER_LOGS=dir  on failure, copy each node's whole stderr to dir/<test>/
//
// Run:
//
//	go test -v -run 'TestCluster|TestHistory' ./test/cluster/ ./test/cluster/faultproxy/
//	SLUICE_CLUSTER_SEED=42 go test -v -run '^TestClusterKillLeaderDuringProduce$' ./test/cluster/
//	go test -run '^$' -bench ClusterFailover -benchtime 3x ./test/cluster/
//
// A seed fixes the test's choices (which partition's leader, which
// follower, how long a node stays down); process scheduling is not
// replayable, so a seed reproduces a scenario, not an interleaving.
package cluster
