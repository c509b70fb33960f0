package metadata

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
)

const (
	benchTopics     = 10_000
	benchPartitions = 10
	benchBrokers    = 30
)

// benchRecords returns the records of a cluster of benchBrokers brokers
// and benchTopics topics of benchPartitions partitions, 3 replicas each.
func benchRecords() []Record {
	records := make([]Record, 0, benchBrokers+benchTopics*(1+benchPartitions))
	for b := int32(0); b < benchBrokers; b++ {
		records = append(records, register(b, int64(b)+1))
	}
	for t := 0; t < benchTopics; t++ {
		id := UUID{0: byte(t >> 8), 1: byte(t), 15: 1}
		records = append(records, &Topic{Name: fmt.Sprintf("topic-%05d", t), ID: id})
		for p := 0; p < benchPartitions; p++ {
			first := int32((t + p) % benchBrokers)
			replicas := []int32{first, (first + 1) % benchBrokers, (first + 2) % benchBrokers}
			records = append(records, &Partition{TopicID: id, Partition: int32(p),
				Replicas: replicas, ISR: replicas, Leader: first, LeaderEpoch: 3, PartitionEpoch: 5})
		}
	}
	return records
}

// encodeLog encodes records length-prefixed, as a log or snapshot holds them.
func encodeLog(records []Record) []byte {
	var b, scratch []byte
	for _, r := range records {
		scratch = AppendRecord(scratch[:0], r)
		b = binary.AppendUvarint(b, uint64(len(scratch)))
		b = append(b, scratch...)
	}
	return b
}

func replayLog(b []byte) (*Image, error) {
	d := NewDelta(EmptyImage())
	for len(b) > 0 {
		length, n := binary.Uvarint(b)
		r, err := DecodeRecord(b[n : n+int(length)])
		if err != nil {
			return nil, err
		}
		if err := d.Replay(r); err != nil {
			return nil, err
		}
		b = b[n+int(length):]
	}
	return d.Apply(1), nil
}

// BenchmarkReplay decodes, replays and applies the records of 100,000
// partitions from their encoding (what a broker does loading a snapshot).
func BenchmarkReplay(b *testing.B) {
	log := encodeLog(benchRecords())
	b.SetBytes(int64(len(log)))
	b.ReportAllocs()
	for b.Loop() {
		img, err := replayLog(log)
		if err != nil || img.NumPartitions() != benchTopics*benchPartitions {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(log))/(1<<20), "MB-encoded")
}

// BenchmarkImageMemory measures the live heap an image of 100,000
// partitions holds, per partition.
func BenchmarkImageMemory(b *testing.B) {
	log := encodeLog(benchRecords())
	var perPartition float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		img, err := replayLog(log)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perPartition = float64(after.HeapAlloc-before.HeapAlloc) / float64(img.NumPartitions())
		runtime.KeepAlive(img)
	}
	b.ReportMetric(perPartition, "bytes/partition")
}

// BenchmarkApplyPartitionChange is the steady state: one leader change
// applied to an image of 10,000 topics, copying the topic map and list.
func BenchmarkApplyPartitionChange(b *testing.B) {
	img, err := replayLog(encodeLog(benchRecords()))
	if err != nil {
		b.Fatal(err)
	}
	topic, _ := img.Topic("topic-05000")
	b.ReportAllocs()
	for b.Loop() {
		d := NewDelta(img)
		p := topic.Partitions[0]
		if err := d.Replay(&PartitionChange{TopicID: topic.ID, Leader: p.Replicas[1], Partition: 0}); err != nil {
			b.Fatal(err)
		}
		d.Apply(img.Offset() + 1)
	}
}

// BenchmarkSnapshot encodes a snapshot of 100,000 partitions.
func BenchmarkSnapshot(b *testing.B) {
	img, err := replayLog(encodeLog(benchRecords()))
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendSnapshot(buf[:0], img)
	}
	b.SetBytes(int64(len(buf)))
}
