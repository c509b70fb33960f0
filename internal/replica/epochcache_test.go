package replica

import (
	"errors"
	"reflect"
	"testing"
)

func TestReplicaEpochCacheAssign(t *testing.T) {
	var c LeaderEpochCache
	steps := []struct {
		epoch   int32
		offset  int64
		changed bool
		want    []EpochEntry
	}{
		{0, 0, true, []EpochEntry{{0, 0}}},
		{0, 5, false, []EpochEntry{{0, 0}}},          // same epoch, later offset: nothing new
		{2, 10, true, []EpochEntry{{0, 0}, {2, 10}}}, // a newer epoch
		{3, 10, true, []EpochEntry{{0, 0}, {3, 10}}}, // epoch 2 wrote nothing: dropped
		{4, 20, true, []EpochEntry{{0, 0}, {3, 10}, {4, 20}}},
		{4, 15, true, []EpochEntry{{0, 0}, {3, 10}, {4, 15}}}, // same epoch, earlier offset
		{1, 12, true, []EpochEntry{{0, 0}, {1, 12}}},          // older epoch: contradicting entries go (Kafka)
		{-1, 30, false, []EpochEntry{{0, 0}, {1, 12}}},
	}
	for i, s := range steps {
		if got := c.Assign(s.epoch, s.offset); got != s.changed {
			t.Fatalf("step %d: Assign(%d, %d) changed=%v, want %v", i, s.epoch, s.offset, got, s.changed)
		}
		if got := c.Entries(); !reflect.DeepEqual(got, s.want) {
			t.Fatalf("step %d: entries %v, want %v", i, got, s.want)
		}
	}
}

func TestReplicaEpochCacheEndOffsetFor(t *testing.T) {
	c, err := NewLeaderEpochCache([]EpochEntry{{2, 10}, {4, 30}, {7, 50}})
	if err != nil {
		t.Fatal(err)
	}
	const leo = 80
	cases := []struct {
		epoch     int32
		wantEpoch int32
		wantEnd   int64
	}{
		{-1, -1, -1},
		{1, 1, 10}, // below every entry: Kafka answers the first start offset
		{2, 2, 30},
		{3, 2, 30},
		{4, 4, 50},
		{6, 4, 50},
		{7, 7, leo}, // the latest epoch ends at the log end
		{8, -1, -1}, // newer than anything known
	}
	for _, tc := range cases {
		e, off := c.EndOffsetFor(tc.epoch, leo)
		if e != tc.wantEpoch || off != tc.wantEnd {
			t.Errorf("EndOffsetFor(%d) = (%d, %d), want (%d, %d)", tc.epoch, e, off, tc.wantEpoch, tc.wantEnd)
		}
	}
	var empty LeaderEpochCache
	if e, off := empty.EndOffsetFor(0, leo); e != -1 || off != -1 {
		t.Errorf("empty cache: (%d, %d), want (-1, -1)", e, off)
	}
}

func TestReplicaEpochCacheTruncate(t *testing.T) {
	c, _ := NewLeaderEpochCache([]EpochEntry{{2, 10}, {4, 30}, {7, 50}})
	if c.TruncateFromEnd(60) {
		t.Fatal("truncating past every entry changed the cache")
	}
	if !c.TruncateFromEnd(50) || !reflect.DeepEqual(c.Entries(), []EpochEntry{{2, 10}, {4, 30}}) {
		t.Fatalf("TruncateFromEnd(50): %v", c.Entries())
	}
	c.Assign(7, 50)
	if !c.TruncateFromStart(35) || !reflect.DeepEqual(c.Entries(), []EpochEntry{{4, 35}, {7, 50}}) {
		t.Fatalf("TruncateFromStart(35): %v", c.Entries())
	}
	if c.TruncateFromStart(35) || c.TruncateFromStart(20) {
		t.Fatalf("repeated TruncateFromStart changed the cache: %v", c.Entries())
	}
	if !c.TruncateFromStart(50) || !reflect.DeepEqual(c.Entries(), []EpochEntry{{7, 50}}) {
		t.Fatalf("TruncateFromStart(50): %v", c.Entries())
	}
}

func TestReplicaEpochCheckpointFormat(t *testing.T) {
	entries := []EpochEntry{{0, 0}, {3, 150}}
	data := EncodeCheckpoint(entries)
	if string(data) != "0\n2\n0 0\n3 150\n" {
		t.Fatalf("encoded %q", data)
	}
	got, err := ParseCheckpoint(data)
	if err != nil || !reflect.DeepEqual(got, entries) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if got, err := ParseCheckpoint([]byte("0\n0\n")); err != nil || len(got) != 0 {
		t.Fatalf("empty checkpoint: %v %v", got, err)
	}
	for _, bad := range []string{
		"", "0\n", "1\n0\n", "0\n2\n0 0\n", "0\n1\n0\n", "0\n1\nx 1\n", "0\n2\n3 5\n2 9\n",
		"0\n2\n1 9\n2 5\n", "0\n1\n-1 0\n", "0\n99999999999\n",
	} {
		if _, err := ParseCheckpoint([]byte(bad)); !errors.Is(err, ErrInvalidCheckpoint) {
			t.Errorf("ParseCheckpoint(%q) = %v, want ErrInvalidCheckpoint", bad, err)
		}
	}
}
