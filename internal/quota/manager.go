package quota

import (
	"sync"

	"github.com/sluicelog/sluice/internal/metadata"
)

// Sensor housekeeping. Sensors are per client, so their number grows with
// input: one idle for inactiveSensorMs is dropped (Kafka drops them after
// an hour too), and at maxSensors the idlest is dropped to make room.
const (
	inactiveSensorMs = 60 * 60 * 1000
	sweepIntervalMs  = 60 * 1000
	maxSensors       = 100_000
)

type sensorKey struct {
	kind Kind
	tags Tags
}

type sensor struct {
	rate         *Rate
	lastRecordMs int64
}

// Manager keeps the sensors of one broker: a Rate per client and quota
// kind. Every node records only what its own clients send it, against the
// quotas of the replicated image, as each Kafka broker does.
type Manager struct {
	cfg WindowConfig

	mu          sync.Mutex
	sensors     map[sensorKey]*sensor
	lastSweepMs int64
}

// NewManager returns a Manager sampling rates as cfg.
func NewManager(cfg WindowConfig) *Manager {
	return &Manager{cfg: cfg.WithDefaults(), sensors: make(map[sensorKey]*sensor)}
}

// Config returns the window configuration after defaults.
func (m *Manager) Config() WindowConfig { return m.cfg }

// Record counts value (bytes, or percent of a second of handler time)
// for a request of kind from user and clientID, and returns how long the
// client must be throttled, 0 when it is within its quota or has none.
// img supplies the quotas; an image without any costs one map lookup.
func (m *Manager) Record(img *metadata.Image, kind Kind, user, clientID string, value float64, nowMs int64) int64 {
	if img == nil || !img.HasClientQuotas() {
		return 0
	}
	bound, tags, ok := Resolve(img.ClientQuotas, kind.Key(), user, clientID)
	if !ok {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sensorLocked(sensorKey{kind, tags}, nowMs)
	s.rate.Record(value, nowMs)
	s.lastRecordMs = nowMs
	return s.rate.ThrottleMs(bound, nowMs)
}

// Bound returns the quota of kind for user and clientID, ok false when
// none applies.
func (m *Manager) Bound(img *metadata.Image, kind Kind, user, clientID string) (float64, bool) {
	if img == nil || !img.HasClientQuotas() {
		return 0, false
	}
	bound, _, ok := Resolve(img.ClientQuotas, kind.Key(), user, clientID)
	return bound, ok
}

// NumSensors returns how many sensors are kept, for tests and metrics.
func (m *Manager) NumSensors() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sensors)
}

func (m *Manager) sensorLocked(key sensorKey, nowMs int64) *sensor {
	if nowMs-m.lastSweepMs >= sweepIntervalMs {
		m.sweepLocked(nowMs)
	}
	if s, ok := m.sensors[key]; ok {
		return s
	}
	if len(m.sensors) >= maxSensors {
		m.evictIdlestLocked()
	}
	s := &sensor{rate: NewRate(m.cfg), lastRecordMs: nowMs}
	m.sensors[key] = s
	return s
}

func (m *Manager) sweepLocked(nowMs int64) {
	m.lastSweepMs = nowMs
	for k, s := range m.sensors {
		if nowMs-s.lastRecordMs >= inactiveSensorMs {
			delete(m.sensors, k)
		}
	}
}

func (m *Manager) evictIdlestLocked() {
	var idlest sensorKey
	oldest := int64(0)
	first := true
	for k, s := range m.sensors {
		if first || s.lastRecordMs < oldest {
			idlest, oldest, first = k, s.lastRecordMs, false
		}
	}
	delete(m.sensors, idlest)
}
