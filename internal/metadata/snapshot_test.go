package metadata

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

func TestEncodingSnapshotRoundTrip(t *testing.T) {
	img := apply(t, clusterImage(t),
		&PartitionChange{TopicID: uuid(1), Partition: 1, Leader: 2, ISR: []int32{2}},
		&FenceBroker{BrokerID: 0, BrokerEpoch: 10},
		&ProducerIDs{BrokerID: 1, BrokerEpoch: 11, NextProducerID: 5000},
		&FeatureLevel{Name: "metadata.version", Level: 7},
		&Config{ResourceType: ConfigResourceBroker, ResourceName: "", Name: "x", Value: "z"},
		&Topic{Name: "empty", ID: uuid(3)},
	)
	for _, want := range []*Image{EmptyImage(), img} {
		b := AppendSnapshot([]byte("xyz"), want)
		require(t, string(b[:3]) == "xyz", "AppendSnapshot overwrote dst")
		got, err := DecodeSnapshot(b[3:])
		requireNoError(t, err)
		requireSameImage(t, got, want)
		require(t, string(encodeRecords(got)) == string(encodeRecords(want)), "snapshot records differ")
	}
}

func TestEncodingSnapshotCorrupt(t *testing.T) {
	good := AppendSnapshot(nil, clusterImage(t))
	for i := range good {
		flipped := slicesClone(good)
		flipped[i] ^= 0x10
		_, err := DecodeSnapshot(flipped)
		requireErrorIs(t, err, ErrCorrupt)
	}
	for n := 0; n < len(good); n++ {
		_, err := DecodeSnapshot(good[:n])
		requireErrorIs(t, err, ErrCorrupt)
	}
	newer := resealed(append([]byte("SLMS"), 1, 1, 0))
	_, err := DecodeSnapshot(newer)
	requireErrorIs(t, err, ErrUnsupportedVersion)
	_, err = DecodeSnapshot(resealed(append([]byte("SLMS"), 0, 1, 200)))
	requireErrorIs(t, err, ErrCorrupt)
	_, err = DecodeSnapshot(resealed(append([]byte("SLMS"), 0, 1, 0, 7)))
	requireErrorIs(t, err, ErrCorrupt)
	// A well-formed snapshot whose records do not replay.
	bad := append([]byte("SLMS"), 0, 1, 1)
	record := AppendRecord(nil, &Partition{TopicID: uuid(1), Replicas: []int32{0}})
	bad = binary.AppendUvarint(bad, uint64(len(record)))
	_, err = DecodeSnapshot(resealed(append(bad, record...)))
	requireErrorIs(t, err, ErrUnknownTopic)
}

// resealed appends a valid CRC to a snapshot body.
func resealed(body []byte) []byte {
	return binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
}

// FuzzDecodeSnapshot: decoding a snapshot never panics, and what decodes
// round-trips.
func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(AppendSnapshot(nil, EmptyImage()))
	f.Add(AppendSnapshot(nil, clusterImage(f)))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := DecodeSnapshot(b)
		if err != nil {
			// Most mutations break the CRC; try the body resealed too.
			if len(b) < 4 {
				return
			}
			if img, err = DecodeSnapshot(resealed(b[:len(b)-4])); err != nil {
				return
			}
		}
		again, err := DecodeSnapshot(AppendSnapshot(nil, img))
		requireNoError(t, err)
		requireSameImage(t, again, img)
	})
}
