package coord

import "unicode/utf16"

// PartitionFor is Kafka's Utils.abs(groupId.hashCode()) % numPartitions:
// Java's String.hashCode over the UTF-16 code units, and an abs that maps
// Integer.MIN_VALUE to 0 (n & 0x7fffffff), so a group lands on the same
// __consumer_offsets partition as on Kafka.
func PartitionFor(groupID string, numPartitions int32) int32 {
	if numPartitions <= 0 {
		numPartitions = defaultOffsetsTopicNumPartitions
	}
	var h int32
	for _, r := range groupID {
		if r >= 0x10000 {
			r1, r2 := utf16.EncodeRune(r)
			h = 31*h + r1
			h = 31*h + r2
			continue
		}
		h = 31*h + r
	}
	return (h & 0x7fffffff) % numPartitions
}
