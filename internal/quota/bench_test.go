package quota

import (
	"strconv"
	"testing"

	"github.com/sluicelog/sluice/internal/metadata"
)

// BenchmarkManagerRecordNoQuotas is what every request pays on a cluster
// without quotas: one check of the image.
func BenchmarkManagerRecordNoQuotas(b *testing.B) {
	m := NewManager(WindowConfig{})
	img := metadata.EmptyImage()
	b.ReportAllocs()
	for i := range b.N {
		m.Record(img, Produce, "ANONYMOUS", "client", 1024, int64(i))
	}
}

// BenchmarkManagerRecord is a request whose client has a quota: the
// precedence walk, the sensor lookup and the rate under the mutex. The
// default client-id quota matches last of the eight levels, the worst
// case; 1,000 client ids share the sensor map.
func BenchmarkManagerRecord(b *testing.B) {
	d := metadata.NewDelta(metadata.EmptyImage())
	if err := d.Replay(&metadata.ClientQuota{Entity: []metadata.QuotaEntityPart{{Type: "client-id", Default: true}},
		Key: metadata.QuotaProducerByteRate, Value: 1 << 20}); err != nil {
		b.Fatal(err)
	}
	img := d.Apply(1)
	m := NewManager(WindowConfig{})
	clients := make([]string, 1000)
	for i := range clients {
		clients[i] = "client-" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := range b.N {
		m.Record(img, Produce, "ANONYMOUS", clients[i%len(clients)], 1024, int64(i/1000))
	}
}

// BenchmarkManagerRecordParallel is BenchmarkManagerRecord from every
// core at once: the cost of the one mutex under contention.
func BenchmarkManagerRecordParallel(b *testing.B) {
	d := metadata.NewDelta(metadata.EmptyImage())
	if err := d.Replay(&metadata.ClientQuota{Entity: []metadata.QuotaEntityPart{{Type: "client-id", Default: true}},
		Key: metadata.QuotaProducerByteRate, Value: 1 << 20}); err != nil {
		b.Fatal(err)
	}
	img := d.Apply(1)
	m := NewManager(WindowConfig{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Record(img, Produce, "ANONYMOUS", "client-"+strconv.Itoa(i%100), 1024, int64(i/1000))
			i++
		}
	})
}
