package group

import (
	"errors"
	"strings"
	"testing"
)

// Regression tests for defects found in review, each driving a shard
// directly and comparing its memory with a replay of the records it wrote.

type replayHarness struct {
	t   *testing.T
	s   *Shard
	cfg Config
	log []Record
}

func newReplayHarness(t *testing.T) *replayHarness {
	cfg := Config{MinSessionTimeoutMs: 10, MaxSessionTimeoutMs: 600000, MaxSize: 100, MaxMemberMetadataBytes: 1 << 20,
		OffsetMetadataMaxBytes: 64, OffsetsRetentionMs: 100000, MaxGroups: 100, MaxRecordBytes: 1000000}
	return &replayHarness{t: t, s: NewShard(cfg), cfg: cfg}
}

// flush takes the shard's records as the runtime appends them, then
// releases its replies.
func (h *replayHarness) flush() map[Waiter]Reply {
	h.log = append(h.log, h.s.TakeRecords()...)
	out := map[Waiter]Reply{}
	for _, r := range h.s.Durable() {
		out[r.Waiter] = r
	}
	return out
}

func (h *replayHarness) replay() *Shard {
	s := NewShard(h.cfg)
	for _, r := range h.log {
		if err := s.Load(0, r.Key, r.Value); err != nil {
			h.t.Fatalf("replay: %v", err)
		}
	}
	return s
}

func committedOffset(s *Shard, group string) int64 {
	r := s.FetchOffsets(FetchRequest{GroupID: group, Topics: []FetchTopic{{Name: "t", Partitions: []int32{0}}}})
	return r.Topics[0].Partitions[0].Offset
}

func commitRequest(group, member string, offset int64) CommitRequest {
	return CommitRequest{GroupID: group, GenerationID: -1, MemberID: member, RetentionTimeMs: -1,
		Topics: []CommitTopic{{Name: "t", Partitions: []CommitPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}}
}

// A commit and a DeleteGroups decided in one flush: the tombstones follow
// the commit in the log, so memory must not keep the offset either.
func TestGroupCommitThenDeleteInOneFlushAgreesWithReplay(t *testing.T) {
	h := newReplayHarness(t)
	h.s.CommitOffsets(0, 1, commitRequest("g", "", 5), nil)
	h.flush()
	h.s.CommitOffsets(0, 2, commitRequest("g", "", 10), nil)
	h.s.DeleteGroup(3, "g")
	replies := h.flush()
	if replies[2].Err != nil {
		t.Fatalf("commit: %v", replies[2].Err)
	}
	if mem, disk := committedOffset(h.s, "g"), committedOffset(h.replay(), "g"); mem != disk {
		t.Fatalf("memory has offset %d, a restart would have %d", mem, disk)
	}
}

// Kafka accepts a commit without a generation into an empty group even
// when it names a member id.
func TestGroupSimpleCommitWithMemberIDIntoEmptyGroup(t *testing.T) {
	h := newReplayHarness(t)
	h.s.CommitOffsets(0, 1, commitRequest("g", "", 5), nil)
	h.flush()
	h.s.CommitOffsets(0, 2, commitRequest("g", "old-member", 7), nil)
	if err := h.flush()[2].Err; err != nil {
		t.Fatalf("generation -1 commit with a member id into an empty group: %v", err)
	}
}

// Records hold strings with an int16 length; flexible requests can carry
// longer ones. A group id past it is refused, never written with a wrapped
// length (which replays as another group's key).
func TestGroupRefusesStringsRecordsCannotHold(t *testing.T) {
	h := newReplayHarness(t)
	h.s.CommitOffsets(0, 1, commitRequest("victim", "", 100), nil)
	h.flush()
	crafted := "victim\x00\x01t\x00\x00\x00\x00" + strings.Repeat("x", 65536)
	h.s.CommitOffsets(0, 2, commitRequest(crafted, "", 7), nil)
	if err := h.flush()[2].Err; !errors.Is(err, ErrInvalidGroupID) {
		t.Fatalf("commit with a %d-byte group id: %v, want ErrInvalidGroupID", len(crafted), err)
	}
	if got := committedOffset(h.replay(), "victim"); got != 100 {
		t.Fatalf("victim's offset after replay %d, want 100", got)
	}
	join := JoinRequest{GroupID: "g", ProtocolType: "consumer", SessionTimeoutMs: 1000,
		Protocols: []Protocol{{Name: strings.Repeat("p", 40000)}}}
	h.s.Join(0, 3, join, "m-1", nil)
	if err := h.flush()[3].Err; !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("join with a 40000-byte protocol name: %v, want ErrInvalidRequest", err)
	}
}

// Members' metadata together must fit one group record: three members of
// 900 KiB each are each under the per-member bound, but the third join is
// refused instead of leaving a group that can never be stored.
func TestGroupBoundsMembersMetadataTogether(t *testing.T) {
	h := newReplayHarness(t)
	big := make([]byte, 900<<10)
	var errs []error
	for i, id := range []string{"a-1", "b-1", "c-1"} {
		h.s.Join(0, Waiter(i+1), JoinRequest{GroupID: "g", ProtocolType: "consumer", SessionTimeoutMs: 1000,
			Protocols: []Protocol{{Name: "range", Metadata: big}}}, id, nil)
	}
	for w, r := range h.flush() {
		if r.Err != nil {
			errs = append(errs, r.Err)
			if !errors.Is(r.Err, ErrMemberMetadataTooLarge) {
				t.Fatalf("join w%d: %v, want ErrMemberMetadataTooLarge", w, r.Err)
			}
		}
	}
	if len(errs) != 2 {
		t.Fatalf("%d joins refused (%v), want 2: only the first fits a 1 MB record", len(errs), errs)
	}
}

// A share group's records (types 10-15, ShareGroupStatePartitionMetadata
// among them) share __consumer_offsets with the consumer groups: the
// shard's replay skips them, without an error and without a group.
func TestGroupLoadSkipsShareGroupRecords(t *testing.T) {
	h := newReplayHarness(t)
	h.s.CommitOffsets(0, 1, commitRequest("g", "", 5), nil)
	h.flush()
	share := func(typ byte, group string, value ...byte) Record {
		return Record{Key: append([]byte{0, typ, 0, byte(len(group))}, group...), Value: value}
	}
	h.log = append(h.log,
		share(11, "s", 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0), // ShareGroupMetadata, epoch 1
		share(15, "s", 0, 0, 1, 1, 1, 0),                            // ShareGroupStatePartitionMetadata, empty
		share(15, "g", 0, 0, 1, 1, 1, 0),                            // under a consumer group's id
		share(15, "s"))                                              // a tombstone
	s := h.replay()
	if got := committedOffset(s, "g"); got != 5 {
		t.Fatalf("offset %d after replay, want 5", got)
	}
	for _, l := range s.ListGroups(nil) {
		if l.GroupID == "s" {
			t.Fatalf("a share group's records made a group: %+v", l)
		}
	}
}
