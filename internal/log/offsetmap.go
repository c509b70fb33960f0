package log

import (
	"crypto/md5"
	"encoding/binary"
)

// offsetMap is the cleaner's key -> latest offset map, Kafka's
// SkimpyOffsetMap: a fixed byte budget (log.cleaner.dedupe.buffer.size,
// shared among the cleaner threads) of open-addressed slots, each the MD5
// of a key and the offset of its latest record. Keys themselves are never
// stored, so memory does not grow with key sizes; two keys with the same
// 128-bit hash would be taken for one, the risk Kafka accepts too.
//
// Slot layout (24 bytes):
//
//	0                16             24
//	+----------------+--------------+
//	| MD5(key)       | offset + 1   |   offset + 1 == 0: the slot is empty
//	+----------------+--------------+
//
// When the map holds maxEntries (90% of its slots, Kafka's load factor), put
// refuses new keys: the cleaner then cleans only the prefix of the dirty
// range whose keys fit, and the rest waits for the next round.
type offsetMap struct {
	slots      []byte
	numSlots   int
	entries    int
	maxEntries int
	// latest is the largest offset put since the last clear.
	latest int64
}

const (
	offsetMapHashSize  = md5.Size
	offsetMapSlotSize  = offsetMapHashSize + 8
	offsetMapLoadRatio = 0.9
)

// newOffsetMap makes a map in bufferBytes; it holds at least one key.
func newOffsetMap(bufferBytes int64) *offsetMap {
	m := &offsetMap{}
	m.reset(bufferBytes)
	return m
}

// reset empties the map and sizes it to bufferBytes, reusing its memory
// when that is large enough: a clean of a small log needs neither a large
// allocation nor clearing one.
func (m *offsetMap) reset(bufferBytes int64) {
	n := max(int(bufferBytes/offsetMapSlotSize), 2)
	if cap(m.slots) < n*offsetMapSlotSize {
		m.slots = make([]byte, n*offsetMapSlotSize)
	}
	m.slots = m.slots[:n*offsetMapSlotSize]
	clear(m.slots)
	m.numSlots, m.maxEntries = n, max(int(float64(n)*offsetMapLoadRatio), 1)
	m.entries, m.latest = 0, -1
}

// clear empties the map for the next clean, keeping its size.
func (m *offsetMap) clear() { m.reset(int64(len(m.slots))) }

// full says no new key fits.
func (m *offsetMap) full() bool { return m.entries >= m.maxEntries }

func offsetMapHash(key []byte) [offsetMapHashSize]byte { return md5.Sum(key) }

// slotFor finds the slot holding hash or the empty slot where it goes.
func (m *offsetMap) slotFor(hash *[offsetMapHashSize]byte) []byte {
	i := int(binary.BigEndian.Uint64(hash[:8]) % uint64(m.numSlots))
	for {
		slot := m.slots[i*offsetMapSlotSize : (i+1)*offsetMapSlotSize]
		if binary.BigEndian.Uint64(slot[offsetMapHashSize:]) == 0 || [offsetMapHashSize]byte(slot[:offsetMapHashSize]) == *hash {
			return slot
		}
		// Linear probing terminates: the load ratio keeps a slot empty.
		i++
		if i == m.numSlots {
			i = 0
		}
	}
}

// put records offset as key's latest; false when the key is new and the map
// is full.
func (m *offsetMap) put(hash *[offsetMapHashSize]byte, offset int64) bool {
	slot := m.slotFor(hash)
	if binary.BigEndian.Uint64(slot[offsetMapHashSize:]) == 0 {
		if m.full() {
			return false
		}
		copy(slot, hash[:])
		m.entries++
	}
	binary.BigEndian.PutUint64(slot[offsetMapHashSize:], uint64(offset)+1)
	m.latest = max(m.latest, offset)
	return true
}

// get returns key's latest offset, or -1 when the map does not hold it.
func (m *offsetMap) get(hash *[offsetMapHashSize]byte) int64 {
	slot := m.slotFor(hash)
	return int64(binary.BigEndian.Uint64(slot[offsetMapHashSize:])) - 1
}
