package log

import (
	"fmt"
	"testing"
	"time"
)

func TestLogOffsetMapKeepsLatestAndRefusesNewKeysWhenFull(t *testing.T) {
	m := newOffsetMap(10 * offsetMapSlotSize) // 10 slots, 9 keys at 90%
	require(t, m.maxEntries == 9, "max entries %d", m.maxEntries)
	hash := func(i int) *[offsetMapHashSize]byte {
		h := offsetMapHash([]byte(fmt.Sprintf("key-%d", i)))
		return &h
	}
	for i := range 9 {
		require(t, m.put(hash(i), int64(i)), "put %d refused before full", i)
	}
	require(t, m.full() && !m.put(hash(9), 9), "a tenth key fit in a full map")
	require(t, m.put(hash(3), 100), "an update of a known key was refused when full")
	require(t, m.get(hash(3)) == 100 && m.get(hash(4)) == 4 && m.get(hash(9)) == -1, "lookups %d %d %d", m.get(hash(3)), m.get(hash(4)), m.get(hash(9)))
	require(t, m.latest == 100, "latest %d", m.latest)
	// Offset 0 is a real offset, not an empty slot.
	m.clear()
	require(t, m.put(hash(1), 0) && m.get(hash(1)) == 0 && m.get(hash(2)) == -1, "offset 0 lost after clear")
}

func TestLogTokenBucketPacesToTheRate(t *testing.T) {
	b := newTokenBucket(1000, 0) // 1000 bytes a second, a second's burst
	require(t, b.take(1000, 0) == 0, "the first second's budget should be free")
	require(t, b.take(500, 0) == 500*time.Millisecond, "500 bytes over budget should wait half a second")
	require(t, b.take(0, 500) == 0, "the debt is paid after half a second")
	require(t, b.take(100, 600) == 0, "100 ms refill 100 bytes")
	require(t, b.take(100, 600) == 100*time.Millisecond, "then 100 bytes more wait 100 ms")
	unlimited := newTokenBucket(0, 0)
	require(t, unlimited.take(1<<40, 0) == 0, "no limit should never wait")
}

func TestLogOffsetMapSizedToTheDirtyRange(t *testing.T) {
	const buffer = 128 << 20
	require(t, offsetMapBytesFor(1<<30, buffer) == buffer, "a large dirty range gets the whole buffer")
	require(t, offsetMapBytesFor(1<<20, buffer) == 4<<20, "1 MiB dirty: %d", offsetMapBytesFor(1<<20, buffer))
	require(t, offsetMapBytesFor(100, buffer) == 64<<10, "a tiny log gets the floor")
	require(t, offsetMapBytesFor(100, 1000) == 1000, "never past the buffer: %d", offsetMapBytesFor(100, 1000))
	m := newOffsetMap(1 << 20)
	big := cap(m.slots)
	h := offsetMapHash([]byte("k"))
	m.put(&h, 5)
	m.reset(48)
	require(t, cap(m.slots) == big && m.numSlots == 2 && m.get(&h) == -1, "reset to a smaller size: %d slots, cap %d, get %d", m.numSlots, cap(m.slots), m.get(&h))
}
