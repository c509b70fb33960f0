package controller

import (
	"fmt"
	"testing"
)

// BenchmarkCreateTopics measures controller decisions plus replay (what
// the quorum adds is Raft and disk, not measured here): 1,000 topics of 10
// partitions with replication factor 3 on 3 brokers, one CreateTopics per
// topic or 100 topics per request, each batch replayed into the next Image
// before the next decision, as the driver does.
func BenchmarkCreateTopics(b *testing.B) {
	const topics, partitions = 1000, 10
	names := make([]string, topics)
	for i := range names {
		names[i] = fmt.Sprintf("topic-%04d", i)
	}
	for _, perRequest := range []int{1, 100} {
		b.Run(fmt.Sprintf("per-request=%d", perRequest), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				cl := newCluster(b, DefaultConfig())
				cl.addBrokers("1", "2", "3")
				for i := 0; i < topics; i += perRequest {
					req := CreateTopicsRequest{Topics: make([]CreatableTopic, perRequest)}
					for j := range req.Topics {
						req.Topics[j] = CreatableTopic{Name: names[i+j], NumPartitions: partitions, ReplicationFactor: 3}
					}
					recs, resp := cl.c.CreateTopics(cl.img, req)
					if resp.Topics[0].Err != nil {
						b.Fatal(resp.Topics[0].Err)
					}
					cl.apply(recs)
				}
				if cl.img.NumPartitions() != topics*partitions {
					b.Fatalf("%d partitions", cl.img.NumPartitions())
				}
			}
			b.ReportMetric(float64(topics*b.N)/b.Elapsed().Seconds(), "topics/s")
		})
	}
}

// BenchmarkCreateTopicsDecideOnly is the controller's share of the above:
// the same decisions against one fixed Image, nothing replayed.
func BenchmarkCreateTopicsDecideOnly(b *testing.B) {
	cl := newCluster(b, DefaultConfig())
	cl.addBrokers("1", "2", "3")
	req := CreateTopicsRequest{Topics: []CreatableTopic{{NumPartitions: 10, ReplicationFactor: 3}}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req.Topics[0].Name = fmt.Sprintf("topic-%04d", i%1000)
		i++
		if _, resp := cl.c.CreateTopics(cl.img, req); resp.Topics[0].Err != nil {
			b.Fatal(resp.Topics[0].Err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "topics/s")
}
