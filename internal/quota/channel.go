package quota

import "context"

// Throttler is the connection a request came on, as the network server
// hands it to the handlers: Throttle mutes the connection for ms once the
// current response is written (KIP-219: the response goes out at once
// with its throttle_time_ms, then the broker reads nothing more from that
// client until the time is up). Several calls for one request keep the
// longest.
type Throttler interface {
	Throttle(ms int64)
}

type throttlerKey struct{}

// WithThrottler returns ctx carrying the connection's throttler.
func WithThrottler(ctx context.Context, t Throttler) context.Context {
	return context.WithValue(ctx, throttlerKey{}, t)
}

// ThrottleChannel mutes the connection of ctx's request for ms; without
// a throttler in ctx (a test calling a handler directly) it does nothing.
func ThrottleChannel(ctx context.Context, ms int64) {
	if ms <= 0 {
		return
	}
	if t, ok := ctx.Value(throttlerKey{}).(Throttler); ok {
		t.Throttle(ms)
	}
}
