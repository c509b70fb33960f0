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

// BenchmarkRecompress is the CPU cost of compression.type on the leader,
// without the log: a 16 KiB batch of 64 JSON-like records re-encoded to
// zstd and lz4 at Kafka's default levels (3 and 9) and lz4 at level 1,
// from uncompressed and from snappy. MB/s counts the records' uncompressed
// bytes.
//
//	go test -run '^$' -bench Recompress -benchmem ./internal/record/
func BenchmarkRecompress(b *testing.B) {
	records := payloadRecords(64, 256)
	plain := mustAppendBatch(b, testOptions(CodecNone), records)
	for _, to := range []Compression{{CodecZstd, DefaultZstdLevel}, {CodecLZ4, DefaultLZ4Level}, {CodecLZ4, 1}} {
		for _, from := range []Codec{CodecNone, CodecSnappy} {
			batch := mustAppendBatch(b, testOptions(from), records)
			b.Run(fmt.Sprintf("%v-%d/from=%v", to.Codec, to.Level, from), func(b *testing.B) {
				b.SetBytes(int64(len(plain)))
				b.ReportAllocs()
				var dst []byte
				for b.Loop() {
					var err error
					if dst, err = Recompress(dst[:0], batch, to, 1<<20); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(dst)), "stored-bytes")
			})
		}
	}
}
