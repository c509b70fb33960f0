// Package quota holds Kafka's client quotas as a broker enforces them:
// the sampled rate a quota is measured with, which quota applies to a
// request (Kafka's precedence over user, client id and their defaults),
// how long a client that exceeds it is throttled, and the per-client
// sensors that keep the rates.
//
// Time enters every function as nowMs, so the rate math is exact under a
// test's manual clock; only Manager holds a mutex, because the handlers of
// many connections record into the same sensors.
package quota

// WindowConfig is how a rate is sampled: Kafka's quota.window.num windows
// of quota.window.size.seconds each.
type WindowConfig struct {
	Samples  int   // quota.window.num, default 11
	WindowMs int64 // quota.window.size.seconds in ms, default 1000
}

// Kafka's defaults.
const (
	DefaultSamples  = 11
	DefaultWindowMs = 1000
)

// Bounds on a WindowConfig, as the config keys bound them: every
// client's sensor holds a slot per window, and the longest throttle
// (Samples × WindowMs) must fit throttle_time_ms.
const (
	MaxSamples  = 100
	MaxWindowMs = 3600 * 1000
)

// WithDefaults returns c with non-positive fields set to Kafka's
// defaults and larger ones cut to the bounds above; one sample is raised
// to two, because the rate needs a complete window besides the current
// one.
func (c WindowConfig) WithDefaults() WindowConfig {
	if c.Samples <= 0 {
		c.Samples = DefaultSamples
	}
	if c.Samples < 2 {
		c.Samples = 2
	}
	if c.WindowMs <= 0 {
		c.WindowMs = DefaultWindowMs
	}
	c.Samples, c.WindowMs = min(c.Samples, MaxSamples), min(c.WindowMs, MaxWindowMs)
	return c
}

// sample is one window's total.
type sample struct {
	startMs int64
	value   float64
	used    bool
}

// Rate is Kafka's sampled Rate: a ring of windows, each summing what was
// recorded while it was current. The rate is the sum over the windows
// still within Samples × WindowMs, divided by the time they span, where
// that span counts as at least Samples-1 whole windows: a client's first
// burst is spread over the full window rather than over the few
// milliseconds it has been connected, as in Kafka, so a new client is not
// throttled for its first request.
//
// A Rate is a plain value: not safe for concurrent use.
type Rate struct {
	cfg     WindowConfig
	samples []sample
	current int
}

// NewRate returns an empty rate sampled as cfg (after WithDefaults).
func NewRate(cfg WindowConfig) *Rate {
	cfg = cfg.WithDefaults()
	return &Rate{cfg: cfg, samples: make([]sample, cfg.Samples)}
}

// Record adds value at nowMs. A window is current for WindowMs from the
// first record in it; the next record after that starts a new window in
// the oldest slot.
func (r *Rate) Record(value float64, nowMs int64) {
	s := &r.samples[r.current]
	if !s.used || nowMs >= s.startMs+r.cfg.WindowMs {
		r.current = (r.current + 1) % len(r.samples)
		s = &r.samples[r.current]
		*s = sample{startMs: nowMs, used: true}
	}
	s.value += value
}

// purge forgets windows that started more than Samples × WindowMs ago.
func (r *Rate) purge(nowMs int64) {
	expire := int64(len(r.samples)) * r.cfg.WindowMs
	for i := range r.samples {
		if r.samples[i].used && nowMs-r.samples[i].startMs >= expire {
			r.samples[i] = sample{}
		}
	}
}

// WindowMs returns the span the rate at nowMs is measured over: from the
// oldest live window's start to now, at least Samples-1 whole windows,
// and never 0.
func (r *Rate) WindowMs(nowMs int64) int64 {
	r.purge(nowMs)
	oldest := nowMs
	for _, s := range r.samples {
		if s.used && s.startMs < oldest {
			oldest = s.startMs
		}
	}
	elapsed := nowMs - oldest
	full := elapsed / r.cfg.WindowMs
	if minFull := int64(len(r.samples) - 1); full < minFull {
		elapsed += (minFull - full) * r.cfg.WindowMs
	}
	return max(elapsed, 1)
}

// PerSecond returns the rate at nowMs in units per second.
func (r *Rate) PerSecond(nowMs int64) float64 {
	rate, _ := r.measure(nowMs)
	return rate
}

// measure returns the rate at nowMs and the span it is measured over.
func (r *Rate) measure(nowMs int64) (perSecond float64, windowMs int64) {
	windowMs = r.WindowMs(nowMs) // purges first
	total := 0.0
	for _, s := range r.samples {
		total += s.value
	}
	return total * 1000 / float64(windowMs), windowMs
}

// ThrottleMs is how long a client whose rate is above bound must pause so
// that its rate falls back to the bound: Kafka's
// (rate - bound) / bound × window, capped at the whole sampled span
// (Samples × WindowMs), since no longer pause can be needed once every
// window has expired. It is 0 when the rate is within the bound.
func (r *Rate) ThrottleMs(bound float64, nowMs int64) int64 {
	if bound <= 0 {
		return 0
	}
	rate, window := r.measure(nowMs)
	if rate <= bound {
		return 0
	}
	throttle := (rate - bound) / bound * float64(window)
	limit := float64(int64(len(r.samples)) * r.cfg.WindowMs)
	return int64(min(throttle, limit) + 0.5)
}

// MaxValueInWindow is the most a client may record within the sampled
// span and stay within bound (Kafka's getMaxValueInQuotaWindow: Samples-1
// windows' worth). A fetch never returns more than this in one response,
// or a single response could put a consumer over its quota for longer
// than the window can measure.
func MaxValueInWindow(cfg WindowConfig, bound float64) float64 {
	cfg = cfg.WithDefaults()
	return bound * float64(int64(cfg.Samples-1)*cfg.WindowMs) / 1000
}
