// Package peer is how a broker talks to another broker: one Kafka-protocol
// connection that sends a request and reads its response, used by the
// follower fetchers (Fetch, OffsetForLeaderEpoch to the partition leader)
// and by partition leaders checking transactional produces with the
// transaction coordinator (TxnVerifier: AddPartitionsToTxn verify_only).
//
// It speaks the same protocol clients do, so a leader needs no second
// listener or second code path to serve its followers: a follower's Fetch
// differs from a consumer's only in its replica id.
//
// Invariants: one request in flight per connection (a fetcher waits for
// each answer before sending the next, so pipelining would buy nothing);
// a response frame larger than MaxResponseBytes closes the connection
// before anything is allocated for it; every call is bounded by its
// context's deadline.
package peer

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxResponseBytes bounds a response frame when Options leave it 0:
// replica.fetch.response.max.bytes plus room for one oversized batch.
const DefaultMaxResponseBytes = 128 << 20

// ErrResponseTooLarge: the peer announced a frame over MaxResponseBytes.
var ErrResponseTooLarge = errors.New("peer response frame too large")

// Options configure a connection.
type Options struct {
	ClientID         string // what the peer's logs and metrics see, e.g. "sluice-replica-fetcher-2"
	MaxResponseBytes int32
	DialTimeout      time.Duration
	// TLS, when set, dials the peer over TLS (its SSL or SASL_SSL
	// listener); a certificate in it is presented for mutual TLS.
	TLS *tls.Config
	// SASL, when set, authenticates the connection before its first
	// request (the peer's SASL listener), and again before the session
	// the peer granted runs out (KIP-368).
	SASL *SASL
}

// Conn is one connection to a peer broker. Safe for concurrent use (calls
// are serialized).
type Conn struct {
	opts Options
	addr string

	mu            sync.Mutex
	conn          net.Conn
	r             *bufio.Reader
	buf           []byte // the request being written
	frame         []byte // the last response frame; its decoded response aliases it
	correlationID int32
	// reauthAt is when to authenticate again; zero when the session does
	// not expire.
	reauthAt time.Time
}

// maxKeptFrameBytes bounds the response buffer a connection keeps between
// calls; a larger frame gets a buffer of its own, dropped after use.
const maxKeptFrameBytes = 16 << 20

// Dial connects to addr (host:port).
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: opts.DialTimeout}
	var nc net.Conn
	var err error
	if opts.TLS != nil {
		cfg := opts.TLS.Clone()
		if host, _, splitErr := net.SplitHostPort(addr); splitErr == nil && cfg.ServerName == "" {
			cfg.ServerName = host
		}
		nc, err = (&tls.Dialer{NetDialer: &d, Config: cfg}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	c := &Conn{opts: opts, addr: addr, conn: nc, r: bufio.NewReaderSize(nc, 64<<10)}
	if opts.SASL != nil {
		authCtx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
		defer cancel()
		if err := c.authenticate(authCtx); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return c, nil
}

// Addr is the address dialled.
func (c *Conn) Addr() string { return c.addr }

// Close closes the connection; a call in flight fails.
func (c *Conn) Close() error { return c.conn.Close() }

// Request sends req at the version it carries and decodes the response
// into a new response of its kind. The caller sets the version (peers run
// the same build, so the newest version both serve is known). A failure
// leaves the connection unusable: the caller closes it and dials again.
//
// The response's byte fields (a fetch's records) alias a buffer the
// connection reuses: they are valid until the next call. A follower
// appends a fetch's records before it fetches again, so it never copies
// them and the buffer is not reallocated for every response.
func (c *Conn) Request(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.reauthAt.IsZero() && !time.Now().Before(c.reauthAt) {
		if err := c.authenticate(ctx); err != nil {
			return nil, err
		}
	}
	return c.roundTrip(ctx, req)
}

// roundTrip sends req and reads its response; c.mu is held.
func (c *Conn) roundTrip(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Time{}
	}
	if err := c.conn.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("peer %s: %w", c.addr, err)
	}
	// A cancelled context must unblock a read in progress, not only the
	// next call.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c.correlationID++
	if err := c.write(req); err != nil {
		return nil, fmt.Errorf("peer %s: send %s: %w", c.addr, kmsg.NameForKey(req.Key()), contextErr(ctx, err))
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := c.read(resp); err != nil {
		return nil, fmt.Errorf("peer %s: %s response: %w", c.addr, kmsg.NameForKey(req.Key()), contextErr(ctx, err))
	}
	return resp, nil
}

// contextErr prefers the context's error when it caused the failure.
func contextErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

// write frames a request: size, then the request header (v1, or v2 with a
// tag buffer for flexible versions), then the body.
func (c *Conn) write(req kmsg.Request) error {
	b := c.buf[:0]
	b = append(b, 0, 0, 0, 0) // size, filled in below
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(c.correlationID))
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.opts.ClientID)))
	b = append(b, c.opts.ClientID...)
	if req.IsFlexible() {
		b = append(b, 0) // no tagged header fields
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	c.buf = b
	_, err := c.conn.Write(b)
	return err
}

// read reads one response frame into resp, checking its correlation id.
func (c *Conn) read(resp kmsg.Response) error {
	var sizeBuf [4]byte
	if _, err := io.ReadFull(c.r, sizeBuf[:]); err != nil {
		return err
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if size < 4 || size > c.opts.MaxResponseBytes {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrResponseTooLarge, size, c.opts.MaxResponseBytes)
	}
	frame := c.frame[:0]
	if cap(frame) < int(size) {
		frame = make([]byte, size)
		if size <= maxKeptFrameBytes {
			c.frame = frame
		}
	}
	frame = frame[:size]
	if _, err := io.ReadFull(c.r, frame); err != nil {
		return err
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != c.correlationID {
		return fmt.Errorf("correlation id %d, want %d", got, c.correlationID)
	}
	body := frame[4:]
	// ApiVersions answers with header v0 even when flexible; every other
	// flexible response has a tag buffer after the correlation id.
	if resp.IsFlexible() && resp.Key() != 18 {
		if len(body) == 0 {
			return errors.New("truncated response header")
		}
		n := int(body[0]) // a tag count we never ask for: expect 0
		if n != 0 {
			return fmt.Errorf("response header has %d tagged fields", n)
		}
		body = body[1:]
	}
	return resp.ReadFrom(body)
}
