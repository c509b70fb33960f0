package api

// SKELETON: shared stubs, removed once the handlers land.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"
)

func notImplemented(context.Context, *Broker, *Request) (kmsg.Response, error) {
	return nil, errors.New("not implemented")
}
