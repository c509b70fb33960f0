package group

import (
	"errors"
	"testing"
)

func txnCommit(pid int64, groupID string, offset int64) TxnCommitRequest {
	return TxnCommitRequest{CommitRequest: CommitRequest{GroupID: groupID, GenerationID: -1,
		Topics: []CommitTopic{{Name: "in", Partitions: []CommitPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}},
		TransactionalID: "etl", ProducerID: pid, ProducerEpoch: 2}
}

func fetchOne(s *Shard, groupID string, requireStable bool) FetchPartitionResult {
	return s.FetchOffsets(FetchRequest{GroupID: groupID, RequireStable: requireStable,
		Topics: []FetchTopic{{Name: "in", Partitions: []int32{0}}}}).Topics[0].Partitions[0]
}

// durable plays the runtime: takes the records, "appends" them, releases
// the replies.
func durable(t *testing.T, s *Shard) []Record {
	t.Helper()
	records := s.TakeRecords()
	for _, r := range s.Durable() {
		if r.Err != nil {
			t.Fatalf("reply %+v", r)
		}
	}
	return records
}

func TestGroupTxnOffsetsVisibleOnlyOnCommit(t *testing.T) {
	s := NewShard(Config{OffsetMetadataMaxBytes: 4096})
	s.TxnCommitOffsets(1000, 1, txnCommit(7, "g", 42), nil)
	records := durable(t, s)
	if len(records) != 1 || !records[0].Transactional || records[0].ProducerID != 7 || records[0].ProducerEpoch != 2 {
		t.Fatalf("records %+v", records)
	}
	if r := fetchOne(s, "g", false); r.Offset != -1 || r.Err != nil {
		t.Fatalf("pending offset visible: %+v", r)
	}
	if r := fetchOne(s, "g", true); !errors.Is(r.Err, ErrUnstableOffsetCommit) {
		t.Fatalf("require_stable with a pending offset: %+v", r)
	}
	s.CompleteTxn(0, 7, true)
	if r := fetchOne(s, "g", true); r.Offset != 42 || r.Err != nil {
		t.Fatalf("after COMMIT: %+v", r)
	}

	s.TxnCommitOffsets(2000, 2, txnCommit(7, "g", 50), nil)
	durable(t, s)
	s.CompleteTxn(0, 7, false)
	if r := fetchOne(s, "g", true); r.Offset != 42 || r.Err != nil {
		t.Fatalf("after ABORT: %+v, want the committed 42", r)
	}
	if s.pendingTxnOffsets != 0 || len(s.pendingTxn) != 0 {
		t.Fatalf("pending left: %d %v", s.pendingTxnOffsets, s.pendingTxn)
	}

	// A member commit must name a member of the group.
	req := txnCommit(8, "g", 1)
	req.MemberID, req.GenerationID = "ghost", 3
	s.TxnCommitOffsets(3000, 3, req, nil)
	s.TakeRecords()
	if r := s.Durable(); len(r) != 1 || !errors.Is(r[0].Err, ErrUnknownMemberID) {
		t.Fatalf("commit from an unknown member: %+v", r)
	}
	req.GroupID = "new"
	s.TxnCommitOffsets(3000, 4, req, nil)
	s.TakeRecords()
	if r := s.Durable(); len(r) != 1 || !errors.Is(r[0].Err, ErrIllegalGeneration) {
		t.Fatalf("member commit to a group that does not exist: %+v", r)
	}
}

// TestGroupTxnOffsetsReplay: a shard rebuilt from the records and
// markers, in log order, ends where the live one did.
func TestGroupTxnOffsetsReplay(t *testing.T) {
	live := NewShard(Config{})
	type entry struct {
		rec    *Record
		marker *struct {
			pid    int64
			commit bool
		}
	}
	var log []entry
	mark := func(pid int64, commit bool) {
		live.CompleteTxn(0, pid, commit)
		log = append(log, entry{marker: &struct {
			pid    int64
			commit bool
		}{pid, commit}})
	}
	commit := func(req TxnCommitRequest) {
		live.TxnCommitOffsets(1, 1, req, nil)
		for _, r := range durable(t, live) {
			log = append(log, entry{rec: &r})
		}
	}
	commit(txnCommit(1, "a", 10))
	commit(txnCommit(2, "b", 20))
	mark(1, true)
	commit(txnCommit(1, "a", 11))
	mark(2, false)
	commit(txnCommit(3, "a", 99)) // still open at the end

	replayed := NewShard(Config{})
	for _, e := range log {
		if e.rec != nil {
			if err := replayed.LoadTxnOffset(e.rec.ProducerID, e.rec.Key, e.rec.Value); err != nil {
				t.Fatal(err)
			}
			continue
		}
		replayed.CompleteTxn(0, e.marker.pid, e.marker.commit)
	}
	for _, s := range []*Shard{live, replayed} {
		if r := fetchOne(s, "a", false); r.Offset != 10 {
			t.Fatalf("group a: %+v", r)
		}
		if r := fetchOne(s, "b", false); r.Offset != -1 {
			t.Fatalf("group b (aborted): %+v", r)
		}
		if r := fetchOne(s, "a", true); !errors.Is(r.Err, ErrUnstableOffsetCommit) {
			t.Fatalf("group a has pending offsets of producers 1 and 3: %+v", r)
		}
		if s.pendingTxnOffsets != 2 {
			t.Fatalf("pending %d, want 2", s.pendingTxnOffsets)
		}
	}
}

// TestGroupTxnOffsetOlderThanPlainCommit: a plain commit written after a
// transaction's offset commit (before its marker) stays when the COMMIT
// arrives, live and on replay, as Kafka keeps the later record.
func TestGroupTxnOffsetOlderThanPlainCommit(t *testing.T) {
	live := NewShard(Config{})
	var replay []Record
	live.TxnCommitOffsets(1, 1, txnCommit(7, "g", 10), nil)
	replay = append(replay, durable(t, live)...)
	live.CommitOffsets(2, 2, CommitRequest{GroupID: "g", GenerationID: -1, RetentionTimeMs: -1,
		Topics: []CommitTopic{{Name: "in", Partitions: []CommitPartition{{Partition: 0, Offset: 20, LeaderEpoch: -1}}}}}, nil)
	replay = append(replay, durable(t, live)...)
	live.CompleteTxn(0, 7, true)

	replayed := NewShard(Config{})
	for _, r := range replay {
		var err error
		if r.Transactional {
			err = replayed.LoadTxnOffset(r.ProducerID, r.Key, r.Value)
		} else {
			err = replayed.Load(3, r.Key, r.Value)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	replayed.CompleteTxn(0, 7, true)
	for name, s := range map[string]*Shard{"live": live, "replayed": replayed} {
		if r := fetchOne(s, "g", true); r.Offset != 20 || r.Err != nil {
			t.Fatalf("%s: %+v, want the later plain commit 20", name, r)
		}
	}

	// The other way round, the transaction's offset is the later one.
	live.CommitOffsets(4, 3, CommitRequest{GroupID: "g", GenerationID: -1, RetentionTimeMs: -1,
		Topics: []CommitTopic{{Name: "in", Partitions: []CommitPartition{{Partition: 0, Offset: 30, LeaderEpoch: -1}}}}}, nil)
	durable(t, live)
	live.TxnCommitOffsets(5, 4, txnCommit(8, "g", 40), nil)
	durable(t, live)
	live.CompleteTxn(0, 8, true)
	if r := fetchOne(live, "g", true); r.Offset != 40 {
		t.Fatalf("later transactional offset: %+v, want 40", r)
	}
}
