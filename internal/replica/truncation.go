package replica

// TruncationOffset is where a follower must truncate its log before fetching
// from a new leader (KIP-101 as refined by KIP-279), given its own leader-epoch
// cache and log end offset and the leader's answer to OffsetForLeaderEpoch for
// the follower's latest epoch (leaderEpoch, leaderEndOffset):
//   - the leader answered undefined (leaderEpoch == UndefinedEpoch or
//     leaderEndOffset == UndefinedEpochOffset): return (localLEO, false) — the
//     caller falls back to the high watermark; ok=false says so;
//   - the leader knows the same epoch as our latest: min(leaderEndOffset, localLEO);
//   - the leader's epoch is older than ours: find our own end offset for the
//     leader's epoch (cache.EndOffsetFor(leaderEpoch, localLEO)) and truncate to
//     min(that, leaderEndOffset) — records we wrote in epochs the leader never
//     had are dropped;
//   - an empty (or nil) cache (we never stamped an epoch): min(leaderEndOffset, localLEO).
//
// The result is never above localLEO. An answer with an epoch newer than
// our latest cannot be a reply to our request (the leader answers the
// largest epoch at or below the one asked); it is treated as undefined.
//
// When our cache does not hold the leader's epoch itself (EndOffsetFor falls
// back to an older epoch of ours), the offset is only a step towards the
// point of divergence, not the point: see TruncationFinal.
func TruncationOffset(cache *LeaderEpochCache, localLEO int64, leaderEpoch int32, leaderEndOffset int64) (offset int64, ok bool) {
	offset, ok, _ = truncation(cache, localLEO, leaderEpoch, leaderEndOffset)
	return offset, ok
}

// TruncationFinal reports whether TruncationOffset's answer for the same
// arguments is the point where our log stops agreeing with the leader's
// (true), or only a step (false): the leader answered an epoch our cache
// never held, say 2 when we hold 1 and 3, so we know our epoch-1 records
// end no later than our epoch 3 starts but not where the leader's epoch 1
// ended — it may have ended earlier, and our epoch-1 records past that
// point would then sit under the leader's epoch-2 records. After truncating
// to the step the follower asks OffsetForLeaderEpoch again for its new
// latest epoch and truncates again (KIP-279). An undefined answer is
// final: the caller falls back to the high watermark.
func TruncationFinal(cache *LeaderEpochCache, localLEO int64, leaderEpoch int32, leaderEndOffset int64) bool {
	_, _, final := truncation(cache, localLEO, leaderEpoch, leaderEndOffset)
	return final
}

func truncation(cache *LeaderEpochCache, localLEO int64, leaderEpoch int32, leaderEndOffset int64) (offset int64, ok, final bool) {
	if leaderEpoch == UndefinedEpoch || leaderEndOffset == UndefinedEpochOffset {
		return localLEO, false, true
	}
	var latest EpochEntry
	var known bool
	if cache != nil {
		latest, known = cache.Latest()
	}
	switch {
	case !known || leaderEpoch == latest.Epoch:
		// Same epoch: that epoch's leader wrote both logs' records below
		// the smaller end, so they agree up to it.
		return min(leaderEndOffset, localLEO), true, true
	case leaderEpoch > latest.Epoch:
		return localLEO, false, true
	}
	ourEpoch, ourEnd := cache.EndOffsetFor(leaderEpoch, localLEO)
	if ourEnd == UndefinedEpochOffset { // cannot happen: a newer entry of ours exists
		return localLEO, false, true
	}
	return min(ourEnd, leaderEndOffset, localLEO), true, ourEpoch == leaderEpoch
}
