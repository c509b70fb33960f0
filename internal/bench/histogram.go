// Package bench holds what `sluice bench` measures with: a latency
// histogram with bounded relative error, and the schedule that paces a
// fixed-rate load. Both are plain values, so they are tested without a
// broker or a clock.
package bench

import (
	"math"
	"math/bits"
	"time"
)

// subBucketBits sets the histogram's resolution: each power-of-two range
// of values is split into 2^subBucketBits linear buckets, so a reported
// quantile is off by at most 1/2^subBucketBits (under 0.1%) of itself:
// three significant digits, as HdrHistogram is usually configured. This is
// HdrHistogram's layout, with a fixed precision.
const subBucketBits = 10

const subBuckets = 1 << subBucketBits

// trackableBits bounds the values bucketed: up to 2^36 µs, about 19 hours,
// far beyond any latency worth a percentile, which keeps the histogram at
// 27,648 buckets (216 KB) instead of 512 KB for the whole int64 range.
// Longer values fall in the top bucket; Max still reports them exactly.
const trackableBits = 36

const maxTrackable = int64(1)<<trackableBits - 1

// Histogram counts durations, in microseconds, from 0 to about 19 hours.
// The zero value is ready to use. It is not safe for concurrent use.
type Histogram struct {
	counts [(trackableBits - subBucketBits + 1) * subBuckets]uint64
	total  uint64
	max    int64
}

// bucketOf returns the bucket of v ≥ 0: values below subBuckets have one
// bucket each; above, the top subBucketBits+1 bits choose the bucket.
func bucketOf(v int64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBucketBits - 1
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// lowestOf is the smallest value in bucket b; highestOf the largest.
func lowestOf(b int) int64 {
	if b < subBuckets {
		return int64(b)
	}
	shift := b/subBuckets - 1
	return int64(b%subBuckets+subBuckets) << shift
}

func highestOf(b int) int64 {
	if b < subBuckets {
		return int64(b)
	}
	shift := b/subBuckets - 1
	return lowestOf(b) + (int64(1) << shift) - 1
}

// Record counts one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := max(d.Microseconds(), 0)
	h.counts[bucketOf(min(v, maxTrackable))]++
	h.total++
	h.max = max(h.max, v)
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Quantile returns the value at quantile q (0.99 for p99): the highest
// value of the bucket holding the ceil(q×count)-th smallest value, capped
// at Max, so it never understates a tail. Zero when nothing was recorded.
// A quantile falling among values beyond maxTrackable reports maxTrackable.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for b, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(highestOf(b), h.max)) * time.Microsecond
		}
	}
	return h.Max()
}
