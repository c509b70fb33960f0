package lint

// layerRanks orders the module's packages as docs/architecture.md draws them: a
// package may import packages of the same or a lower rank, never a higher
// one. A package not listed takes the rank of its nearest listed ancestor
// directory (internal/vfs/memfs ranks as internal/vfs); a package with no
// listed ancestor fails the tree test, so every new package gets a
// deliberate place.
//
// Same-rank imports are allowed (the Go compiler already forbids cycles);
// ranks are spaced so a package can be slotted in between later.
//
// layerRanks lists packages that exist; plannedRanks the places already
// chosen for packages the open issues will create, so that their rules
// (a pure transaction state machine, an admin edge) hold from their first
// line. A test fails once a planned package exists, to move it here.
var layerRanks = withPlanned(map[string]int{
	// Entry points and test harnesses: nothing imports them.
	"cmd":           100,
	"test":          100,
	"internal/lint": 100,

	// Composition root: builds every component and wires them together.
	"internal/node": 90,

	// Edge. The servers are wired by node and imported by no one; handlers
	// may call clients of other nodes (to forward controller-bound
	// requests); everything at the edge may use the wire codecs.
	"internal/netserver":  80,
	"internal/httpserver": 80, // HTTP: metrics, health, pprof; mounts the console
	"internal/console":    80, // the web console: a Kafka client of the node, mounted on the HTTP listener
	"internal/api":        70,
	"internal/peer":       60,
	"internal/wire":       55,

	// Drivers: the goroutines, timers and disks around the state machines.
	// The coordinators write their state to partitions; raft keeps its
	// log on internal/log, and kraft replays it into metadata images;
	// partitions park delayed operations in purgatory.
	"internal/coord":     50,
	"internal/kraft":     47, // the controller on the Raft quorum, as each node sees it: Image, Watch, Submit
	"internal/raft":      45, // the driver around go.etcd.io/raft/v3
	"internal/partition": 40,
	"internal/purgatory": 35,

	// Share groups (KIP-932): share partitions on their leader, share
	// sessions, the persister of share state and the share groups' records;
	// over the pure sharegroup.
	"internal/share": 50,

	// Pure state machines (see purePackages). Controller decisions read
	// the metadata image.
	"internal/controller":  30,
	"internal/coord/group": 30,
	"internal/coord/txn":   30, // the pure transaction state machine (issue 12)
	"internal/metadata":    25,
	"internal/replica":     25,

	"internal/coord/sharegroup": 30, // share groups and share partitions (KIP-932)
	"internal/coord/sharestate": 30, // the share coordinator's state: __share_group_state (KIP-932)

	// Client quotas: rates sampled with nowMs and the per-client sensors
	// the edge records into, over the quotas of the metadata image.
	"internal/quota": 27,

	// Storage: the partition log, on vfs, holding record batches.
	"internal/log": 20,

	// Configuration: plain values, names and validation, used from the log
	// (segment and retention settings) up to the command line.
	"internal/config": 15,

	// Leaves: import no other internal package except each other.
	"internal/auth":     10, // principals and the pure parts of the security model
	"internal/bench":    10, // latency histograms and rate pacing for `sluice bench`
	"internal/clock":    10,
	"internal/parallel": 10, // bounded fan-out of disk-bound work (opening thousands of logs)
	"internal/golden":   10, // golden-file test runner, used from tests only
	// The Prometheus registry: counters the hot path adds to, and the
	// collector that reads the node's state at scrape time.
	"internal/metrics": 10,
	"internal/vfs":     10,
	"internal/record":  10,
})

// plannedRanks are the ranks of packages not written yet (see layerRanks).
var plannedRanks = map[string]int{
	"internal/sim": 100, // the seeded cluster simulator (test-only)
}

// withPlanned adds plannedRanks to the ranks of existing packages.
func withPlanned(existing map[string]int) map[string]int {
	for pkg, rank := range plannedRanks {
		existing[pkg] = rank
	}
	return existing
}

// purePackages are the state machines that take time as nowMs and
// randomness as an argument and do no I/O, so a test or the simulator can
// drive them step by step. Subpackages are pure too.
var purePackages = []string{
	"internal/replica",
	"internal/metadata",
	"internal/controller",
	"internal/coord/group",
	"internal/coord/txn",
	"internal/coord/sharegroup",
	"internal/coord/sharestate",
}

// pureForbidden are the import paths (with everything below them) that
// would let a pure package reach the clock, the disk, the network,
// goroutine synchronisation or ambient randomness. Paths starting with
// "internal/" are the module's own packages that would do the same.
var pureForbidden = []string{
	"os",
	"net",
	"time",
	"sync",
	"syscall",
	"math/rand",
	"crypto/rand",
	"golang.org/x/sys",
	"github.com/twmb/franz-go",
	"internal/clock",
	"internal/vfs",
	"internal/log",
}

// filePackage is the only package subtree allowed to touch the file system
// through package os: CONTRIBUTING.md's one door to the disk.
const filePackage = "internal/vfs"

// osFileFuncs are the functions of package os that open, create, read,
// write, remove or inspect files and directories by path.
var osFileFuncs = map[string]bool{
	"Open": true, "OpenFile": true, "OpenRoot": true, "OpenInRoot": true,
	"Create": true, "CreateTemp": true,
	"ReadFile": true, "WriteFile": true, "ReadDir": true, "DirFS": true,
	"Remove": true, "RemoveAll": true, "Rename": true, "Truncate": true,
	"Mkdir": true, "MkdirAll": true, "MkdirTemp": true,
	"Stat": true, "Lstat": true, "Chmod": true, "Chtimes": true,
	"Link": true, "Symlink": true, "CopyFS": true,
}

// kafkaClientLibrary is franz-go: its message structs (kmsg), error codes
// (kerr) and clients (kgo, kadm). Only the edge speaks Kafka.
const kafkaClientLibrary = "github.com/twmb/franz-go"

// edgePackages may import kafkaClientLibrary. The command line and the
// end-to-end and simulation harnesses act as Kafka clients.
var edgePackages = []string{
	"internal/netserver",
	"internal/wire",
	"internal/api",
	"internal/console",
	"internal/peer",
	"internal/node",
	"cmd",
	"test",
	"internal/sim",
}

// logPackage knows nothing of replication or networking: it is a local,
// single-writer log, also used for the Raft log.
const logPackage = "internal/log"

var logForbidden = []string{
	"net",
	"internal/replica",
	"internal/partition",
	"internal/purgatory",
	"internal/netserver",
	"internal/wire",
	"internal/api",
	"internal/peer",
	"internal/raft",
	"internal/kraft",
	"internal/controller",
	"internal/metadata",
	"internal/coord",
	"internal/node",
	"internal/httpserver",
}

// compositionOnly are imported only by the composition root and the command
// line: they assemble the node, they are not building blocks.
var compositionOnly = []string{
	"internal/node",
	"internal/netserver",
	"internal/httpserver",
	"internal/api",
}

var compositionImporters = []string{
	"internal/node",
	"cmd",
}

// maxFuncLines is the body length above which a function must carry a
// `// long: reason` line in its doc comment (CONTRIBUTING.md: above 70 only for a
// dispatch switch or a format parser).
const maxFuncLines = 70
