package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// DescribeTransactions v0 (KIP-664): the state, producer and partitions of
// transactional ids this broker coordinates; an id coordinated elsewhere
// gets NOT_COORDINATOR, an unknown one TRANSACTIONAL_ID_NOT_FOUND.
var describeTransactionsHandler = handler{key: 65, minVersion: 0, maxVersion: 0, serve: serveDescribeTransactions}

func serveDescribeTransactions(ctx context.Context, b *Broker, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	t, err := txns(b)
	z := b.authz(r)
	for i, id := range req.TransactionalIDs {
		st := kmsg.NewDescribeTransactionsResponseTransactionState()
		st.TransactionalID = id
		// DESCRIBE on the id; its partitions are listed only for topics
		// the principal may describe, as in Kafka.
		if denied := z.transactionalID(auth.OpDescribe, id); denied != nil {
			st.ErrorCode = errorCode(denied)
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		if err != nil {
			st.ErrorCode = groupErrorCode(err)
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		d := t.DescribeTransactions(ctx, req.TransactionalIDs[i:i+1])[0]
		if d.Err != nil {
			st.ErrorCode = groupErrorCode(d.Err)
			resp.TransactionStates = append(resp.TransactionStates, st)
			continue
		}
		st.State, st.TimeoutMillis, st.StartTimestamp = d.State.String(), d.TimeoutMs, d.StartTimestampMs
		st.ProducerID, st.ProducerEpoch = d.ProducerID, d.ProducerEpoch
		for _, tp := range d.Partitions {
			if z.topic(auth.OpDescribe, tp.Topic) != nil {
				continue
			}
			if n := len(st.Topics); n > 0 && st.Topics[n-1].Topic == tp.Topic {
				st.Topics[n-1].Partitions = append(st.Topics[n-1].Partitions, tp.Partition)
				continue
			}
			st.Topics = append(st.Topics, kmsg.DescribeTransactionsResponseTransactionStateTopic{Topic: tp.Topic, Partitions: []int32{tp.Partition}})
		}
		resp.TransactionStates = append(resp.TransactionStates, st)
	}
	return resp, nil
}
