package api

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/clock"
	"github.com/sluicelog/sluice/internal/quota"
)

// Client quota enforcement, as Kafka's KafkaApis applies it: after a
// request is handled, its bytes (Produce: the request; consumer Fetch: the
// response) and its handler time are recorded in the client's sensors,
// the longest throttle among them goes into the response's
// throttle_time_ms, and the connection is muted that long once the
// response is written (KIP-219). The client is identified by the
// principal's name (ANONYMOUS without authentication) and the header's
// client id.
//
// Not charged to request_percentage: follower fetches (replication is
// never throttled by client quotas), ApiVersions (a throttled client must
// still be able to talk), WriteTxnMarkers from a principal allowed
// CLUSTER_ACTION (a transaction coordinator's markers, a cluster action
// Kafka answers exempt: a muted coordinator connection would hold every
// transaction completing through this broker in PrepareCommit; a refused
// one is charged, as Kafka charges it), and requests whose handling time is mostly a
// wait rather than work: a Fetch's long poll (only its reads are
// charged), JoinGroup and SyncGroup (the rest of the group), and the
// requests decided by the controller (a Raft commit), which Kafka
// forwards without holding a request thread.
// Produce is charged its handling time less its waits for the fsync and,
// for acks=all, the ISR, and for the transaction coordinator's
// verification of a transactional batch (Request.waited): Kafka's handler
// returns once the append is written and parks the rest in purgatory,
// uncharged, and appends a batch to verify from the verification's
// callback. OffsetCommit, TxnOffsetCommit, AddPartitionsToTxn,
// AddOffsetsToTxn and EndTxn are charged their handling time less their
// calls to the coordinator, which return once its write has replicated
// (awaitCoordinator): Kafka answers them from the write's callback, on no
// request thread. Exempting them whole let a client flood them for free.
// AddPartitionsToTxn v4 verify_only, sent by partition leaders, is charged
// so too, as Kafka charges it to the sending broker (its handler throttles
// it like a client's): Sluice takes it from any client.

// quotaUnchargedRequestTime lists the keys whose handler time is waiting,
// not work. WriteTxnMarkers is decided per principal (requestTimeUncharged).
var quotaUnchargedRequestTime = map[int16]bool{
	1:  true, // Fetch: charged its read time in serveFetch
	11: true, // JoinGroup
	14: true, // SyncGroup
	18: true, // ApiVersions
	19: true, // CreateTopics
	20: true, // DeleteTopics
	22: true, // InitProducerId (a producer-id block from the controller)
	33: true, // AlterConfigs
	37: true, // CreatePartitions
	43: true, // ElectLeaders
	44: true, // IncrementalAlterConfigs
	49: true, // AlterClientQuotas
	17: true, // SaslHandshake: a client must be able to (re-)authenticate, as Kafka exempts it
	36: true, // SaslAuthenticate: the same; SCRAM's PBKDF2 is the broker's cost, not the client's work
	51: true, // AlterUserScramCredentials (decided by the controller)
}

// requestTimeUncharged reports whether r's handler time is left out of
// request_percentage. A cluster action (WriteTxnMarkers) is exempt only
// for a principal allowed CLUSTER_ACTION, as Kafka throttles one refused
// for it: exempt whoever sent it, any client could flood it, each answered
// CLUSTER_AUTHORIZATION_FAILED, and never be throttled.
func (b *Broker) requestTimeUncharged(r *Request) bool {
	if r.Header.APIKey == writeTxnMarkersHandler.key {
		return b.authz(r).cluster(auth.OpClusterAction) == nil
	}
	return quotaUnchargedRequestTime[r.Header.APIKey]
}

// waitClock measures the wall time during which at least one of a
// request's goroutines waits (for durability, for the ISR, for a
// coordinator): waits on several goroutines at once count once, so that
// the request is never credited more than the time it took. Without a
// clock (no quotas to charge) it measures nothing.
type waitClock struct {
	clock   clock.Clock
	mu      sync.Mutex
	waiting int       // goroutines in a wait
	since   time.Time // when waiting went from 0 to 1
	waited  time.Duration
}

func (w *waitClock) begin() {
	if w.clock == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiting == 0 {
		w.since = w.clock.Now()
	}
	w.waiting++
}

func (w *waitClock) end() {
	if w.clock == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.waiting--
	if w.waiting == 0 {
		w.waited += w.clock.Now().Sub(w.since)
	}
}

// newWaitClock measures a request's waits for the request_percentage
// quota, or nothing when b charges no quota.
func newWaitClock(b *Broker) waitClock {
	if b.Quotas == nil {
		return waitClock{}
	}
	return waitClock{clock: fetchClock(b)}
}

// total is the time waited in waits that have ended.
func (w *waitClock) total() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waited
}

// awaitCoordinator runs f, a call to the group or transaction
// coordinator that returns once its write has replicated (or a
// verification by the transaction coordinator), and adds its time to r's
// waits, which the request_percentage quota does not charge: Kafka's
// handler hands the write over and answers from its callback, on no
// request thread. The coordinator's own work runs on its goroutine, not
// the handler's.
func (b *Broker) awaitCoordinator(r *Request, f func()) {
	if b.Quotas == nil {
		f()
		return
	}
	clk := fetchClock(b)
	start := clk.Now()
	defer func() { r.waited += clk.Now().Sub(start) }()
	f()
}

// quotaClient returns who the request counts against.
func quotaClient(r *Request) (user, clientID string) {
	if r.Header.ClientID != nil {
		clientID = *r.Header.ClientID
	}
	return r.Principal.Name, clientID
}

// quotaRecord records value of kind for r's client and returns the
// throttle time in ms (0 without quotas).
func (b *Broker) quotaRecord(r *Request, kind quota.Kind, value float64) int64 {
	if b.Quotas == nil {
		return 0
	}
	user, clientID := quotaClient(r)
	return b.Quotas.Record(b.Control.Image(), kind, user, clientID, value, clock.UnixMs(fetchClock(b)))
}

// quotaRequestTime records handler time d (as Kafka does: percent of one
// second) and returns the throttle time.
func (b *Broker) quotaRequestTime(r *Request, d time.Duration) int64 {
	if b.Quotas == nil || d <= 0 {
		return 0
	}
	return b.quotaRecord(r, quota.Request, float64(d)*100/float64(time.Second))
}

// quotaFetchMaxBytes caps a consumer fetch at what its quota admits in one
// sampled span, so one response cannot put it over its quota for longer
// than the sensors can see; without a quota it returns limit unchanged.
func (b *Broker) quotaFetchMaxBytes(r *Request, limit int64) int64 {
	if b.Quotas == nil {
		return limit
	}
	user, clientID := quotaClient(r)
	bound, ok := b.Quotas.Bound(b.Control.Image(), quota.Fetch, user, clientID)
	if !ok {
		return limit
	}
	return min(limit, max(int64(quota.MaxValueInWindow(b.Quotas.Config(), bound)), 1))
}

// throttleResponse applies the throttles of a request answered with a
// kmsg response (or none: acks=0): the produce byte rate and the request
// time. It sets throttle_time_ms and mutes the connection.
func (b *Broker) throttleResponse(ctx context.Context, r *Request, frameBytes int, took time.Duration, resp kmsg.Response) {
	if b.Quotas == nil || r == nil {
		return
	}
	var bytesMs, timeMs int64
	if r.Header.APIKey == produceHandler.key {
		bytesMs = b.quotaRecord(r, quota.Produce, float64(frameBytes))
	}
	if !b.requestTimeUncharged(r) {
		timeMs = b.quotaRequestTime(r, took)
	}
	throttleMs := b.noteThrottle(quota.Produce, bytesMs, timeMs)
	if throttleMs <= 0 {
		return
	}
	// Versions before KIP-219 expect the broker to hold the response back
	// itself; kmsg knows which versions those are. A request without a
	// response (acks=0) mutes the connection.
	afterResponse := true
	if t, ok := resp.(kmsg.ThrottleResponse); ok {
		_, afterResponse = t.Throttle()
	}
	if st, ok := resp.(kmsg.SetThrottleResponse); ok {
		st.SetThrottle(int32(min(throttleMs, math.MaxInt32)))
	}
	quota.ThrottleChannel(ctx, throttleMs, afterResponse)
}

// noteThrottle returns the longer of a byte-rate throttle (of kind) and
// a request-time throttle, counting the response as throttled by the
// quota that asked for the longer one.
func (b *Broker) noteThrottle(kind quota.Kind, bytesMs, timeMs int64) int64 {
	throttleMs := max(bytesMs, timeMs)
	if throttleMs <= 0 || b.Metrics == nil {
		return throttleMs
	}
	key := kind.Key()
	if timeMs > bytesMs {
		key = quota.Request.Key()
	}
	b.Metrics.QuotaThrottles.WithLabelValues(key).Inc()
	return throttleMs
}
