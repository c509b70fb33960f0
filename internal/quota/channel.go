package quota

import "context"

// Throttler is the connection a request came on, as the network server
// hands it to the handlers. Throttle holds the connection back for ms:
//
//   - afterResponse (KIP-219, what current clients expect): the response
//     goes out at once with its throttle_time_ms, then the broker reads
//     nothing more from that client until the time is up;
//   - otherwise (request versions older than KIP-219, whose clients do not
//     back off on their own): the response itself is held for ms, and so
//     is everything after it on the connection.
//
// Several calls for one request keep the longest.
type Throttler interface {
	Throttle(ms int64, afterResponse bool)
}

type throttlerKey struct{}

// WithThrottler returns ctx carrying the connection's throttler.
func WithThrottler(ctx context.Context, t Throttler) context.Context {
	return context.WithValue(ctx, throttlerKey{}, t)
}

// ThrottleChannel throttles the connection of ctx's request for ms (see
// Throttler); without a throttler in ctx (a test calling a handler
// directly) it does nothing.
func ThrottleChannel(ctx context.Context, ms int64, afterResponse bool) {
	if ms <= 0 {
		return
	}
	if t, ok := ctx.Value(throttlerKey{}).(Throttler); ok {
		t.Throttle(ms, afterResponse)
	}
}
