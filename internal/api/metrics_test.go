package api

import (
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestMetricsCountResponseErrorsAtAnyDepth(t *testing.T) {
	resp := kmsg.NewPtrMetadataResponse()
	for _, code := range []int16{0, kerr.UnknownTopicOrPartition.Code} {
		topic := kmsg.NewMetadataResponseTopic()
		topic.ErrorCode = code
		for _, pcode := range []int16{0, kerr.LeaderNotAvailable.Code, kerr.LeaderNotAvailable.Code} {
			p := kmsg.NewMetadataResponseTopicPartition()
			p.ErrorCode = pcode
			topic.Partitions = append(topic.Partitions, p)
		}
		resp.Topics = append(resp.Topics, topic)
	}
	var counts errorCounts
	countResponseErrors(reflect.ValueOf(resp), &counts)
	want := errorCounts{kerr.UnknownTopicOrPartition.Code: 1, kerr.LeaderNotAvailable.Code: 4}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("counts = %v, want %v", counts, want)
	}

	clean := kmsg.NewPtrProduceResponse()
	clean.Topics = []kmsg.ProduceResponseTopic{{Partitions: make([]kmsg.ProduceResponseTopicPartition, 3)}}
	var none errorCounts
	countResponseErrors(reflect.ValueOf(clean), &none)
	if none != nil {
		t.Errorf("a clean response counted %v", none)
	}
}

func TestMetricsErrorNames(t *testing.T) {
	if got := errorName(kerr.InvalidTopicException.Code); got != "INVALID_TOPIC_EXCEPTION" {
		t.Errorf("errorName = %q", got)
	}
	if got := errorName(-42); got != "UNKNOWN_CODE_-42" {
		t.Errorf("unknown code = %q", got)
	}
}

// BenchmarkMetricsCountProduceResponseErrors is what the request metrics
// add to a clean produce response of 10 partitions.
func BenchmarkMetricsCountProduceResponseErrors(b *testing.B) {
	resp := kmsg.NewPtrProduceResponse()
	resp.Topics = []kmsg.ProduceResponseTopic{{Partitions: make([]kmsg.ProduceResponseTopicPartition, 10)}}
	b.ReportAllocs()
	for b.Loop() {
		var counts errorCounts
		countResponseErrors(reflect.ValueOf(resp), &counts)
	}
}
