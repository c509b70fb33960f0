package netserver

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/sluicelog/sluice/internal/quota"
)

// Connection limits, as Kafka's ConnectionQuotas applies them when a
// connection is accepted:
//
//   - max.connections: the most connections at once on this broker.
//   - max.connections.per.ip, with per-address overrides: the most at once
//     from one client address.
//   - connection_creation_rate quotas on ip entities (from the metadata
//     image): new connections per second from one address.
//
// A connection over any of them is closed right after accept, before
// anything is read, and counted by reason. The broker-wide
// max.connection.creation.rate is different, as in Kafka: the accept loop
// pauses until the rate is back within the limit, so excess clients wait
// in the listen backlog instead of being refused.

// Reasons a connection was refused, as the refused-connections metric
// labels them.
const (
	RefusedMaxConnections      = "max.connections"
	RefusedMaxConnectionsPerIP = "max.connections.per.ip"
	RefusedIPConnectionRate    = "connection_creation_rate"
)

// ipRateExpiry is how long an address's creation-rate sensor is kept
// without new connections: longer than any sampled span, so forgetting it
// never forgives a burst the rate could still see.
const ipRateExpiry = 10 * time.Minute

// maxIPRates bounds the creation-rate sensors kept, one per address
// seen recently; beyond it, the sweep runs before a new one is made, and
// if every address is still recent the new address goes unmetered.
const maxIPRates = 100_000

// refusals counts refused connections by reason.
type refusals struct {
	maxConnections, perIP, ipRate atomic.Int64
}

// RefusedConnections returns how many connections were closed right after
// accept, by reason, since the server started.
func (s *Server) RefusedConnections() map[string]int64 {
	return map[string]int64{
		RefusedMaxConnections:      s.refused.maxConnections.Load(),
		RefusedMaxConnectionsPerIP: s.refused.perIP.Load(),
		RefusedIPConnectionRate:    s.refused.ipRate.Load(),
	}
}

// ipRate is one address's connection-creation sensor.
type ipRate struct {
	rate   *quota.Rate
	lastMs int64
}

// clientIP is the address of a connection's client, "" when it has none
// (a test's pipe).
func clientIP(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap().String()
	}
	return ""
}

// admitLocked decides whether a new connection from ip may be served, and
// if so counts it against ip. It returns the reason when it may not.
func (s *Server) admitLocked(ip string, nowMs int64) (reason string, ok bool) {
	if len(s.conns) >= s.cfg.MaxConnections {
		s.refused.maxConnections.Add(1)
		return RefusedMaxConnections, false
	}
	if limit := s.perIPLimit(ip); s.connsPerIP[ip] >= limit {
		s.refused.perIP.Add(1)
		return RefusedMaxConnectionsPerIP, false
	}
	if s.cfg.IPConnectionRate != nil && ip != "" {
		if bound, ok := s.cfg.IPConnectionRate(ip); ok && s.recordIPConnectionLocked(ip, bound, nowMs) {
			s.refused.ipRate.Add(1)
			return RefusedIPConnectionRate, false
		}
	}
	s.connsPerIP[ip]++
	return "", true
}

func (s *Server) perIPLimit(ip string) int {
	if n, ok := s.cfg.MaxConnectionsPerIPOverrides[ip]; ok {
		return n
	}
	return s.cfg.MaxConnectionsPerIP
}

// recordIPConnectionLocked counts a connection attempt from ip and reports
// whether it puts ip over bound. Refused attempts count too, as in Kafka:
// a client that retries in a tight loop stays refused.
func (s *Server) recordIPConnectionLocked(ip string, bound float64, nowMs int64) bool {
	r, ok := s.ipRates[ip]
	if !ok {
		if len(s.ipRates) >= maxIPRates {
			s.sweepIPRatesLocked(nowMs)
		}
		if len(s.ipRates) >= maxIPRates {
			return false
		}
		r = &ipRate{rate: quota.NewRate(s.cfg.QuotaWindow)}
		s.ipRates[ip] = r
	}
	r.rate.Record(1, nowMs)
	r.lastMs = nowMs
	return r.rate.ThrottleMs(bound, nowMs) > 0
}

func (s *Server) sweepIPRatesLocked(nowMs int64) {
	for ip, r := range s.ipRates {
		if nowMs-r.lastMs >= ipRateExpiry.Milliseconds() {
			delete(s.ipRates, ip)
		}
	}
}

// releaseIPLocked forgets one closed connection of ip.
func (s *Server) releaseIPLocked(ip string) {
	if s.connsPerIP[ip] <= 1 {
		delete(s.connsPerIP, ip)
	} else {
		s.connsPerIP[ip]--
	}
}

// throttleAccept pauses the accept loop while the broker-wide
// max.connection.creation.rate is exceeded.
func (s *Server) throttleAccept() {
	if s.acceptRate == nil {
		return
	}
	nowMs := time.Now().UnixMilli()
	s.acceptRate.Record(1, nowMs)
	wait := s.acceptRate.ThrottleMs(s.cfg.MaxConnectionCreationRate, nowMs)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(wait) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	}
}

// Throttle holds the connection back for ms (quota.Throttler): after the
// response being prepared is written, neither the next request is served
// nor, once the reader gets there, more bytes read until the time is up;
// and when !afterResponse, that response itself waits too.
func (c *conn) Throttle(ms int64, afterResponse bool) {
	until := time.Now().Add(time.Duration(ms) * time.Millisecond).UnixNano()
	raise(&c.mutedUntil, until)
	if !afterResponse {
		raise(&c.delayUntil, until)
	}
}

// raise sets v to until unless it already holds a later time.
func raise(v *atomic.Int64, until int64) {
	for {
		old := v.Load()
		if old >= until || v.CompareAndSwap(old, until) {
			return
		}
	}
}

// waitMuted waits out a mute; it ends early when the connection stops
// (the client left, or the server is shutting down and still answers what
// it has read).
func (c *conn) waitMuted(ctx context.Context) { c.waitUntil(ctx, &c.mutedUntil) }

// waitDelayed holds a response back for a client older than KIP-219.
func (c *conn) waitDelayed(ctx context.Context) { c.waitUntil(ctx, &c.delayUntil) }

func (c *conn) waitUntil(ctx context.Context, v *atomic.Int64) {
	until := v.Load()
	if until == 0 {
		return
	}
	d := time.Until(time.Unix(0, until))
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.stopRead:
	case <-ctx.Done():
	}
}
