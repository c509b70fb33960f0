package record

import (
	"fmt"
	"testing"
)

// batchOfSize builds an uncompressed batch of about size bytes of 100-byte
// records.
func batchOfSize(b *testing.B, codec Codec, size int) []byte {
	records := payloadRecords(max(size/120, 1), 100)
	return mustAppendBatch(b, testOptions(codec), records)
}

func BenchmarkValidateBatch(b *testing.B) {
	for _, size := range []int{16 << 10, 1 << 20} {
		batch := batchOfSize(b, CodecNone, size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ValidateBatch(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRecordsDecode(b *testing.B) {
	records := payloadRecords(500, 100)
	uncompressed := len(kmsgRecords(records))
	for _, codec := range allCodecs {
		batch := mustAppendBatch(b, testOptions(codec), records)
		b.Run(codec.String(), func(b *testing.B) {
			b.SetBytes(int64(uncompressed))
			b.ReportAllocs()
			for b.Loop() {
				n := 0
				err := Records(batch, 1<<20, func(*Record) error { n++; return nil })
				if err != nil || n != len(records) {
					b.Fatalf("%d records, error %v", n, err)
				}
			}
			b.ReportMetric(float64(len(batch)), "batch-bytes")
		})
	}
}

func BenchmarkAppendBatch(b *testing.B) {
	records := payloadRecords(500, 100)
	uncompressed := len(kmsgRecords(records))
	for _, codec := range allCodecs {
		b.Run(codec.String(), func(b *testing.B) {
			b.SetBytes(int64(uncompressed))
			b.ReportAllocs()
			var dst []byte
			for b.Loop() {
				var err error
				if dst, err = AppendBatch(dst[:0], testOptions(codec), records); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
