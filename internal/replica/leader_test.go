package replica

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicelog/sluice/internal/golden"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files with the current outputs")

// TestReplicaLeaderGolden runs the stories in testdata/*.txt against a
// LeaderState. Commands (key=value arguments; lists are comma-separated):
//
//	leader id= epoch= pepoch= replicas= isr= leo= hw= start= now=   a new leader, prints state
//	append leo=                        SetLogEndOffset
//	fetch id= offset= now=             FollowerFetched
//	shrink now= lag=                   ProposeShrink
//	expand                             ProposeExpand
//	committed pepoch= replicas= isr=   UpdateCommitted
//	failed                             ProposalFailed
//	state                              HW, LEO, ISRs, pending, followers
//
// Every command but state and leader prints the HW after it, and whether a
// call that reports an advance said so; a test of the story also checks
// that the HW never moved back, whatever the file says.
func TestReplicaLeaderGolden(t *testing.T) {
	golden.RunDir(t, "testdata", *rewrite, func(t *testing.T) func(string) string {
		h := &leaderHarness{t: t}
		return h.run
	})
}

type leaderHarness struct {
	t      *testing.T
	s      *LeaderState
	lastHW int64
}

func (h *leaderHarness) run(command string) string {
	fields := strings.Fields(command)
	a := map[string]string{}
	for _, f := range fields[1:] {
		k, v, _ := strings.Cut(f, "=")
		a[k] = v
	}
	out := h.dispatch(fields[0], a)
	if h.s != nil {
		hw := h.s.HighWatermark()
		if hw < h.lastHW || hw > h.s.LogEndOffset() {
			h.t.Fatalf("%s: HW %d after %d, LEO %d", command, hw, h.lastHW, h.s.LogEndOffset())
		}
		h.lastHW = hw
	}
	return out
}

func (h *leaderHarness) dispatch(cmd string, a map[string]string) string {
	if cmd != "leader" && h.s == nil {
		h.t.Fatalf("%s before leader", cmd)
	}
	s := h.s
	switch cmd {
	case "leader":
		h.s = NewLeaderState(LeaderStateConfig{
			LocalID: int32(num(a["id"])), LeaderEpoch: int32(num(a["epoch"])), PartitionEpoch: int32(num(a["pepoch"])),
			Replicas: ids(a["replicas"]), ISR: ids(a["isr"]),
			LogEndOffset: num(a["leo"]), HighWatermark: num(a["hw"]), EpochStartOffset: num(a["start"]),
		}, num(a["now"]))
		h.lastHW = h.s.HighWatermark()
		return h.state()
	case "append":
		return h.advanced(s.SetLogEndOffset(num(a["leo"])))
	case "fetch":
		advanced, err := s.FollowerFetched(int32(num(a["id"])), num(a["offset"]), num(a["now"]))
		if err != nil {
			if !errors.Is(err, ErrNotReplica) {
				h.t.Fatalf("FollowerFetched: %v is not ErrNotReplica", err)
			}
			return fmt.Sprintf("error: %v", err)
		}
		return h.advanced(advanced)
	case "shrink":
		return proposal(s.ProposeShrink(num(a["now"]), num(a["lag"])))
	case "expand":
		return proposal(s.ProposeExpand())
	case "committed":
		return h.advanced(s.UpdateCommitted(int32(num(a["pepoch"])), ids(a["replicas"]), ids(a["isr"])))
	case "failed":
		s.ProposalFailed()
		return fmt.Sprintf("hw=%d", s.HighWatermark())
	case "state":
		return h.state()
	}
	h.t.Fatalf("unknown command %q", cmd)
	return ""
}

func (h *leaderHarness) advanced(advanced bool) string {
	return fmt.Sprintf("hw=%d advanced=%v", h.s.HighWatermark(), advanced)
}

func proposal(c ISRChange, ok bool) string {
	if !ok {
		return "no proposal"
	}
	kind := "expand"
	if c.Shrink {
		kind = "shrink"
	}
	return fmt.Sprintf("propose %s isr=%s pepoch=%d", kind, list(c.NewISR), c.PartitionEpoch)
}

func (h *leaderHarness) state() string {
	s := h.s
	pending := "none"
	if c, ok := s.Pending(); ok {
		pending = strings.TrimPrefix(proposal(c, ok), "propose ")
	}
	lines := []string{
		fmt.Sprintf("hw=%d leo=%d epoch=%d pepoch=%d start=%d", s.HighWatermark(), s.LogEndOffset(),
			s.LeaderEpoch(), s.PartitionEpoch(), s.EpochStartOffset()),
		fmt.Sprintf("replicas=%s isr=%s maximal=%s pending=%s", list(s.Replicas()), list(s.ISR()), list(s.MaximalISR()), pending),
	}
	for _, f := range s.Followers() {
		lines = append(lines, fmt.Sprintf("follower %d: leo=%d caught-up=%d last-fetch=%d last-fetch-leader-leo=%d",
			f.ID, f.LogEndOffset, f.LastCaughtUpTimeMs, f.LastFetchTimeMs, f.LastFetchLeaderLogEndOffset))
	}
	return strings.Join(lines, "\n")
}

func num(s string) int64 {
	if s == "" {
		return 0
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		panic(err)
	}
	return n
}

func ids(s string) []int32 {
	var out []int32
	for _, f := range strings.Split(s, ",") {
		if f != "" {
			out = append(out, int32(num(f)))
		}
	}
	return out
}

func list(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// TestReplicaLeaderCopies checks that the accessors hand out copies: the
// owner passes them to other goroutines (responses, metrics) after
// unlocking.
func TestReplicaLeaderCopies(t *testing.T) {
	s := NewLeaderState(LeaderStateConfig{LocalID: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}, LogEndOffset: 5}, 0)
	s.ISR()[0] = 9
	s.MaximalISR()[0] = 9
	s.Replicas()[0] = 9
	s.Followers()[0].LogEndOffset = 99
	if c, ok := s.ProposeShrink(100, 10); !ok {
		t.Fatal("no shrink")
	} else {
		c.NewISR[0] = 9
	}
	if c, _ := s.Pending(); c.NewISR[0] != 1 {
		t.Fatalf("pending changed through the returned proposal: %v", c.NewISR)
	}
	if s.ISR()[0] != 1 || s.MaximalISR()[0] != 1 || s.Replicas()[0] != 1 || s.Followers()[0].LogEndOffset != -1 {
		t.Fatalf("state changed through a returned slice: %v %v %v %v", s.ISR(), s.MaximalISR(), s.Replicas(), s.Followers())
	}
}
