package replica

import "testing"

func mustCache(t *testing.T, entries ...EpochEntry) *LeaderEpochCache {
	t.Helper()
	c, err := NewLeaderEpochCache(entries)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestReplicaTruncationOffset(t *testing.T) {
	diverged := []EpochEntry{{1, 0}, {3, 50}}
	cases := []struct {
		name            string
		entries         []EpochEntry // nil: a nil cache
		empty           bool         // an empty, non-nil cache
		localLEO        int64
		leaderEpoch     int32
		leaderEndOffset int64
		want            int64
		wantOK          bool
		wantFinal       bool
	}{
		{name: "undefined epoch", entries: diverged, localLEO: 70, leaderEpoch: UndefinedEpoch, leaderEndOffset: 60, want: 70, wantFinal: true},
		{name: "undefined offset", entries: diverged, localLEO: 70, leaderEpoch: 3, leaderEndOffset: UndefinedEpochOffset, want: 70, wantFinal: true},
		{name: "same epoch, leader shorter", entries: diverged, localLEO: 70, leaderEpoch: 3, leaderEndOffset: 65, want: 65, wantOK: true, wantFinal: true},
		{name: "same epoch, leader longer", entries: diverged, localLEO: 70, leaderEpoch: 3, leaderEndOffset: 90, want: 70, wantOK: true, wantFinal: true},
		// Our epoch 2 ran 40..50; the leader's to 60 (it was elected for
		// epoch 3 too, but we never got those records): cut at our end of 2.
		{name: "older epoch we hold", entries: []EpochEntry{{1, 0}, {2, 40}, {3, 50}}, localLEO: 70, leaderEpoch: 2, leaderEndOffset: 60,
			want: 50, wantOK: true, wantFinal: true},
		{name: "older epoch we hold, leader shorter", entries: []EpochEntry{{1, 0}, {2, 40}, {3, 50}}, localLEO: 70, leaderEpoch: 2, leaderEndOffset: 45,
			want: 45, wantOK: true, wantFinal: true},
		// Diverged: we never had epoch 2. EndOffsetFor(2) falls back to our
		// epoch 1, which ends where our epoch 3 starts, 50: everything we
		// wrote in epoch 3 goes; whether all of epoch 1 up to 50 agrees
		// with the leader takes another round.
		{name: "diverged", entries: diverged, localLEO: 70, leaderEpoch: 2, leaderEndOffset: 60, want: 50, wantOK: true},
		{name: "leader epoch below all of ours", entries: []EpochEntry{{3, 20}, {5, 50}}, localLEO: 70, leaderEpoch: 1, leaderEndOffset: 30,
			want: 20, wantOK: true, wantFinal: true},
		{name: "empty cache", empty: true, localLEO: 70, leaderEpoch: 4, leaderEndOffset: 30, want: 30, wantOK: true, wantFinal: true},
		{name: "empty cache, leader longer", empty: true, localLEO: 70, leaderEpoch: 4, leaderEndOffset: 90, want: 70, wantOK: true, wantFinal: true},
		{name: "nil cache", localLEO: 70, leaderEpoch: 4, leaderEndOffset: 30, want: 30, wantOK: true, wantFinal: true},
		// Not an answer to our question (the leader answers an epoch at or
		// below the one asked): unusable, like undefined.
		{name: "leader epoch above ours", entries: diverged, localLEO: 70, leaderEpoch: 5, leaderEndOffset: 30, want: 70, wantFinal: true},
	}
	for _, tc := range cases {
		var cache *LeaderEpochCache
		switch {
		case tc.empty:
			cache = &LeaderEpochCache{}
		case tc.entries != nil:
			cache = mustCache(t, tc.entries...)
		}
		got, ok := TruncationOffset(cache, tc.localLEO, tc.leaderEpoch, tc.leaderEndOffset)
		final := TruncationFinal(cache, tc.localLEO, tc.leaderEpoch, tc.leaderEndOffset)
		if got != tc.want || ok != tc.wantOK || final != tc.wantFinal {
			t.Errorf("%s: got (%d, ok=%v, final=%v), want (%d, ok=%v, final=%v)",
				tc.name, got, ok, final, tc.want, tc.wantOK, tc.wantFinal)
		}
	}
}

// TestReplicaTruncationRounds plays the follower's loop against a leader:
// ask for our latest epoch, truncate, repeat until final. The leader had
// epoch 1 only up to 40 when it was elected for epoch 2; we had epoch-1
// records up to 50 and then wrote epoch 3 (a leadership we lost before
// committing anything); the leader now leads epoch 4, from 60 (a leader's
// cache always holds its own epoch, so it can answer any older one). Our
// records 40..50 are not the leader's: the first round only gets to 50,
// the second to 40.
func TestReplicaTruncationRounds(t *testing.T) {
	leader := mustCache(t, EpochEntry{1, 0}, EpochEntry{2, 40}, EpochEntry{4, 60})
	const leaderLEO = 65
	ours := mustCache(t, EpochEntry{1, 0}, EpochEntry{3, 50})
	localLEO := int64(70)
	var steps []int64
	for round := 0; ; round++ {
		if round == 5 {
			t.Fatalf("no final answer after 5 rounds: %v", steps)
		}
		latest, _ := ours.Latest()
		leaderEpoch, leaderEnd := leader.EndOffsetFor(latest.Epoch, leaderLEO)
		offset, ok := TruncationOffset(ours, localLEO, leaderEpoch, leaderEnd)
		if !ok {
			t.Fatalf("round %d: leader answered (%d, %d): undefined", round, leaderEpoch, leaderEnd)
		}
		final := TruncationFinal(ours, localLEO, leaderEpoch, leaderEnd)
		ours.TruncateFromEnd(offset)
		localLEO = offset
		steps = append(steps, offset)
		if final {
			break
		}
	}
	if len(steps) != 2 || steps[0] != 50 || steps[1] != 40 {
		t.Fatalf("truncated to %v, want [50 40]", steps)
	}
}
