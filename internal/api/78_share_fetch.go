package api

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/controller"
	"github.com/sluicelog/sluice/internal/metadata"
	"github.com/sluicelog/sluice/internal/share"
)

// ShareFetch v1-2 (KIP-932, Kafka 4.1; v2 Kafka 4.2): a share group
// member fetches from the partitions of its share session (epoch 0 opens
// one, -1 closes it), acknowledging what it got before in the same
// request. Each partition answers with whole record batches and the ranges
// of offsets acquired for this member, with their delivery counts; the
// member keeps only the records in those ranges. Topics are addressed by
// id.
//
// v2 adds ShareAcquireMode (KIP-1206): 1 (record limit) makes MaxRecords
// a strict bound; 0 (batch optimized) lets a broker go past it to a batch
// boundary. Sluice acquires at most MaxRecords records in both modes,
// which 0 allows; the batches carrying them are still sent whole, the
// member keeping the acquired records only. BatchSize, a hint for how to
// split acquired ranges, is not needed for that. v2 also adds IsRenewAck
// (KIP-1222): its acknowledgements may carry RENEW (4), which extends the
// locks of records the member holds, and then the request acquires
// nothing (a renewing consumer is still busy with what it has), so its
// fetch limits must be 0, as Kafka checks.
var shareFetchHandler = handler{key: 78, minVersion: 1, maxVersion: 2, serve: serveShareFetch}

// The ShareAcquireMode values of ShareFetch v2 (KIP-1206).
const (
	shareAcquireBatchOptimized = 0
	shareAcquireRecordLimit    = 1
)

// shareFetchMaxWait bounds how long a share fetch is held for records,
// whatever the client asks for.
const shareFetchMaxWait = 30 * time.Second

// shareFetchInvalid says why the request's v2 fields make it
// INVALID_REQUEST, if they do.
func shareFetchInvalid(req *kmsg.ShareFetchRequest) error {
	if m := req.ShareAcquireMode; m != shareAcquireBatchOptimized && m != shareAcquireRecordLimit {
		return fmt.Errorf("share acquire mode %d is neither 0 (batch optimized) nor 1 (record limit)", m)
	}
	if req.IsRenewAck && (req.MaxWaitMillis != 0 || req.MinBytes != 0 || req.MaxBytes != 0 || req.MaxRecords != 0) {
		// A renewing fetch acquires nothing, so Kafka (KAFKA-19844) wants
		// its fetch limits zero rather than silently ignoring them.
		return fmt.Errorf("a ShareFetch with is_renew_ack fetches nothing: max_wait_ms %d, min_bytes %d, max_bytes %d and max_records %d must all be 0",
			req.MaxWaitMillis, req.MinBytes, req.MaxBytes, req.MaxRecords)
	}
	return nil
}

func serveShareFetch(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.ShareFetchRequest)
	resp := req.ResponseKind().(*kmsg.ShareFetchResponse)
	ids := make([]metadata.UUID, len(req.Topics))
	for i, t := range req.Topics {
		ids[i] = t.TopicID
	}
	if err := shareGroupAuthorize(b.authz(r), stringOrEmpty(req.GroupID), shareTopicsByID(b, ids)); err != nil {
		resp.ErrorCode, resp.ErrorMessage = errorCode(err), errorMessage(err)
		return resp, nil
	}
	s, err := shares(b)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = groupErrorCode(err), errorMessage(err)
		return resp, nil
	}
	if err := shareFetchInvalid(req); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, errorMessage(err)
		return resp, nil
	}
	resp.AcquisitionLockTimeoutMillis = int32(s.LockDurationMs(stringOrEmpty(req.GroupID)))
	img := b.Control.Image()
	names := shareTopicNames{img: img}
	fr := share.FetchRequest{
		// The connection's context (netserver serves each request with
		// it): the share session ends with the connection, as in Kafka.
		Conn:    ctx,
		GroupID: stringOrEmpty(req.GroupID), MemberID: stringOrEmpty(req.MemberID), SessionEpoch: req.ShareSessionEpoch,
		MaxWait:    min(time.Duration(max(req.MaxWaitMillis, 0))*time.Millisecond, shareFetchMaxWait),
		MaxRecords: int(req.MaxRecords), MaxBytes: req.MaxBytes,
		Acks:     map[share.TopicPartition][]share.Acknowledgement{},
		RenewAck: req.IsRenewAck,
	}
	if fr.MaxRecords <= 0 {
		fr.MaxRecords = 500 // KIP-1206's default, for a client that sends none
	}
	var unknown []kmsg.ShareFetchResponseTopic
	for _, t := range req.Topics {
		name, ok := names.name(t.TopicID)
		if !ok {
			unknown = append(unknown, unknownShareFetchTopic(t))
			continue
		}
		for _, p := range t.Partitions {
			tp := share.TopicPartition{Topic: name, Partition: p.Partition}
			fr.Partitions = append(fr.Partitions, tp)
			for _, a := range p.AcknowledgementBatches {
				fr.Acks[tp] = append(fr.Acks[tp], share.Acknowledgement{FirstOffset: a.FirstOffset, LastOffset: a.LastOffset, Types: a.AcknowledgeTypes})
			}
		}
	}
	for _, t := range req.ForgottenTopicsData {
		if name, ok := names.name(t.TopicID); ok {
			for _, p := range t.Partitions {
				fr.Forget = append(fr.Forget, share.TopicPartition{Topic: name, Partition: p})
			}
		}
	}
	results, err := s.Fetch(ctx, fr)
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = groupErrorCode(err), errorMessage(err)
		return resp, nil
	}
	resp.Topics = append(shareFetchTopics(img, results), unknown...)
	return resp, nil
}

// shareTopicNames resolves topic ids through one image.
type shareTopicNames struct{ img *metadata.Image }

func (n shareTopicNames) name(id [16]byte) (string, bool) {
	t, ok := n.img.TopicByID(metadata.UUID(id))
	if !ok {
		return "", false
	}
	return t.Name, true
}

func unknownShareFetchTopic(t kmsg.ShareFetchRequestTopic) kmsg.ShareFetchResponseTopic {
	err := fmt.Errorf("%w: %x", controller.ErrUnknownTopicID, t.TopicID[:])
	out := kmsg.NewShareFetchResponseTopic()
	out.TopicID = t.TopicID
	for _, p := range t.Partitions {
		rp := kmsg.NewShareFetchResponseTopicPartition()
		rp.Partition, rp.ErrorCode, rp.ErrorMessage = p.Partition, errorCode(err), errorMessage(err)
		rp.AcknowledgeErrorCode = errorCode(err)
		rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
		out.Partitions = append(out.Partitions, rp)
	}
	return out
}

// shareFetchTopics groups the results by topic, in the order they come.
func shareFetchTopics(img *metadata.Image, results []share.PartitionResult) []kmsg.ShareFetchResponseTopic {
	var out []kmsg.ShareFetchResponseTopic
	index := map[string]int{}
	for _, res := range results {
		i, ok := index[res.Topic]
		if !ok {
			t, _ := img.Topic(res.Topic)
			rt := kmsg.NewShareFetchResponseTopic()
			if t != nil {
				rt.TopicID = t.ID
			}
			i = len(out)
			index[res.Topic] = i
			out = append(out, rt)
		}
		rp := kmsg.NewShareFetchResponseTopicPartition()
		rp.Partition = res.Partition
		rp.ErrorCode, rp.ErrorMessage = errorCode(res.Err), errorMessage(res.Err)
		rp.AcknowledgeErrorCode, rp.AcknowledgeErrorMessage = errorCode(res.AckErr), errorMessage(res.AckErr)
		rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = -1, -1
		if pi, ok := img.Partition(res.Topic, res.Partition); ok && (res.Err != nil || res.AckErr != nil) {
			rp.CurrentLeader.LeaderID, rp.CurrentLeader.LeaderEpoch = pi.Leader, pi.LeaderEpoch
		}
		rp.Records = res.Records
		for _, a := range res.Acquired {
			ar := kmsg.NewShareFetchResponseTopicPartitionAcquiredRecord()
			ar.FirstOffset, ar.LastOffset, ar.DeliveryCount = a.FirstOffset, a.LastOffset, a.DeliveryCount
			rp.AcquiredRecords = append(rp.AcquiredRecords, ar)
		}
		out[i].Partitions = append(out[i].Partitions, rp)
	}
	return out
}
