package console_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluicelog/sluice/internal/console"
)

// BenchmarkConsolePages10kPartitions times the pages that grow with the
// number of partitions, against one node holding a topic of 10,000
// partitions, with the console's sampler at its default intervals (it
// reads all 10,000 partitions every 5 s meanwhile). Each request reads the
// cluster over Kafka and renders at most one page of rows.
//
//	go test -run '^$' -bench ConsolePages10k -benchtime 20x ./internal/console
func BenchmarkConsolePages10kPartitions(b *testing.B) {
	c := startClusterWith(b, console.Options{})
	c.createTopic(b, "wide", 10_000)
	waitHosted(b, c, "wide", 10*time.Minute)
	for _, path := range []string{"/", "/topics", "/topics/wide", "/topics/wide?page=50", "/topics/wide/messages?partition=9999&from=end"} {
		b.Run(fmt.Sprintf("GET %s", path), func(b *testing.B) {
			c.mustGet(b, path) // warm the connections
			for b.Loop() {
				c.mustGet(b, path)
			}
		})
	}
}

// waitHosted waits until every partition of topic answers ListOffsets: a
// node opens the logs of a new 10,000-partition topic for a while after
// CreateTopics returns, and the benchmark times the console, not that.
func waitHosted(b *testing.B, c *cluster, topic string, bound time.Duration) {
	b.Helper()
	start := time.Now()
	for time.Since(start) < bound {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		ends, err := c.admin.ListEndOffsets(ctx, topic)
		cancel()
		if err == nil && ends.Error() == nil {
			b.Logf("10,000 partitions answer ListOffsets %v after CreateTopics", time.Since(start).Round(time.Second))
			return
		}
	}
	b.Fatalf("%s not hosted within %v", topic, bound)
}
