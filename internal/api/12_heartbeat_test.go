package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestHeartbeatWithoutCoordinator(t *testing.T) {
	h := newFakeGroupHarness(t, nil)
	for _, v := range []int16{0, 4} {
		groupWantCode(t, "heartbeat", groupHeartbeat(t, h, v, "g", 1, "m"), kerr.CoordinatorNotAvailable)
	}
}
