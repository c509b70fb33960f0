package api

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/coord"
)

// ShareStates is the share coordinator (KIP-932's persister side) as the
// handlers of APIs 83–87 and FindCoordinator key type 2 use it.
type ShareStates interface {
	FindCoordinator(ctx context.Context, key string) (int32, error)
	InitializeState(ctx context.Context, k coord.ShareStateKey, stateEpoch int32, startOffset int64) error
	ReadState(ctx context.Context, k coord.ShareStateKey, leaderEpoch int32) (coord.ShareReadResult, error)
	WriteState(ctx context.Context, k coord.ShareStateKey, req coord.ShareWriteRequest) error
	DeleteState(ctx context.Context, k coord.ShareStateKey) error
	ReadStateSummary(ctx context.Context, k coord.ShareStateKey) (coord.ShareStateSummary, error)
}

var _ ShareStates = (*coord.ShareCoordinator)(nil)

var errNoShareStateCoordinator = fmt.Errorf("%w: this broker runs no share coordinator on __share_group_state", coord.ErrCoordinatorNotAvailable)

// shareStateCall runs one partition's call of a share-state request, after
// the CLUSTER_ACTION check every one of them needs (they are sent by
// brokers only, as in Kafka), and returns its error code and message.
func shareStateCall(ctx context.Context, b *Broker, r *Request, call func(ShareStates) error) (int16, *string) {
	err := b.authz(r).cluster(auth.OpClusterAction)
	if err == nil && b.ShareStates == nil {
		err = errNoShareStateCoordinator
	}
	if err == nil {
		err = call(b.ShareStates)
	}
	if err == nil {
		return 0, nil
	}
	msg := errorMessage(err)
	return shareStateErrorCode(err), msg
}

// shareStateErrorCode is a coordinator's code, except that a topic id the
// image lacks is UNKNOWN_TOPIC_OR_PARTITION, as in Kafka's share
// coordinator (groupErrorCode turns that into a coordinator error).
func shareStateErrorCode(err error) int16 {
	if errors.Is(err, coord.ErrUnknownShareTopic) {
		return kerr.UnknownTopicOrPartition.Code
	}
	return groupErrorCode(err)
}
