// Package faultproxy forwards TCP connections between loopback addresses
// and can be told to break them, so a test can cut one node of a cluster
// off from its peers without root, network namespaces or packet filters.
//
// A Proxy listens on 127.0.0.1 and forwards every accepted connection to one
// target. Its mode applies to new and existing connections alike:
//
//   - Forward: bytes flow both ways, after an optional delay per chunk.
//   - Blackhole: connections are accepted and kept open, but every byte is
//     read and discarded, as on a link that silently loses packets; the
//     peers find out only through their own timeouts.
//   - Drop: connections are closed at once, as on a link whose far end
//     answers with a reset.
//
// Heal returns to Forward and closes the connections that lost bytes while
// blackholed: a TCP stream with a hole in it must not be resumed.
//
// Invariant: a Proxy only ever dials a loopback (127.0.0.0/8) target.
package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// Mode is what a Proxy does with the bytes it reads.
type Mode int

const (
	Forward Mode = iota
	Blackhole
	Drop
)

func (m Mode) String() string {
	switch m {
	case Forward:
		return "forward"
	case Blackhole:
		return "blackhole"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// dialTimeout bounds the connection to the target; a target that does not
// answer (a stopped process) makes the proxy close the client's side.
const dialTimeout = 2 * time.Second

// Proxy is one forwarding listener. All methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	mode   Mode
	delay  time.Duration
	links  map[*link]struct{}
	closed bool
}

// link is one accepted connection and, unless blackholed from the start,
// its upstream connection. lossy is set once a byte was discarded.
type link struct {
	client, upstream net.Conn
	lossy            bool
}

// Listen starts a proxy on a free 127.0.0.1 port forwarding to target.
func Listen(target string) (*Proxy, error) {
	return ListenOn("127.0.0.1:0", target)
}

// ListenOn starts a proxy on addr forwarding to target; both must be
// loopback addresses.
func ListenOn(addr, target string) (*Proxy, error) {
	if err := requireLoopback(target); err != nil {
		return nil, err
	}
	if err := requireLoopback(addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{target: target, ln: ln, links: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("faultproxy: %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
		return fmt.Errorf("faultproxy: %q is not a 127.0.0.0/8 address", addr)
	}
	return nil
}

// Addr is where the proxy listens.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is where the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// Blackhole makes the proxy discard every byte, on open connections too.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = Blackhole
}

// Drop closes every open connection and every new one at once.
func (p *Proxy) Drop() {
	p.mu.Lock()
	p.mode = Drop
	links := p.takeLinksLocked(func(*link) bool { return true })
	p.mu.Unlock()
	closeLinks(links)
}

// Delay holds each chunk of bytes for d before forwarding it (Forward mode).
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Heal forwards again with no delay and closes the connections that lost
// bytes, so both ends reconnect on a clean stream.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.mode, p.delay = Forward, 0
	links := p.takeLinksLocked(func(l *link) bool { return l.lossy })
	p.mu.Unlock()
	closeLinks(links)
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	links := p.takeLinksLocked(func(*link) bool { return true })
	p.mu.Unlock()
	err := p.ln.Close()
	closeLinks(links)
	p.wg.Wait()
	return err
}

func (p *Proxy) takeLinksLocked(match func(*link) bool) []*link {
	var out []*link
	for l := range p.links {
		if match(l) {
			out = append(out, l)
			delete(p.links, l)
		}
	}
	return out
}

func closeLinks(links []*link) {
	for _, l := range links {
		l.close()
	}
}

func (l *link) close() {
	l.client.Close()
	if l.upstream != nil {
		l.upstream.Close()
	}
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and friends: back off
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

// serve connects one client to the target (unless the link is cut) and
// copies both ways until either side closes.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	l := &link{client: c}
	switch p.Mode() {
	case Drop:
		c.Close()
		return
	case Forward:
		up, err := net.DialTimeout("tcp", p.target, dialTimeout)
		if err != nil {
			c.Close()
			return
		}
		l.upstream = up
	}
	if !p.add(l) {
		l.close()
		return
	}
	defer p.remove(l)
	if l.upstream == nil {
		// Accepted while blackholed: nothing to forward to, ever. Heal
		// closes it as lossy.
		p.pipe(l, c, nil)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.pipe(l, l.upstream, c)
	}()
	p.pipe(l, c, l.upstream)
	<-done
}

func (p *Proxy) add(l *link) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if l.upstream == nil {
		l.lossy = true
	}
	p.links[l] = struct{}{}
	return true
}

func (p *Proxy) remove(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
	l.close()
}

// pipe copies src to dst chunk by chunk, asking before each chunk what the
// current mode says; dst nil discards everything. On any error or EOF it
// closes both connections so the other direction ends too.
func (p *Proxy) pipe(l *link, src, dst net.Conn) {
	defer l.close()
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			forward, delay := p.decide(l)
			if delay > 0 {
				time.Sleep(delay)
			}
			if forward && dst != nil {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return // EOF, a reset, or a close by Drop, Heal or Close
		}
	}
}

// decide says whether a chunk read now is forwarded, and after what delay.
// A chunk read while blackholed marks the link lossy.
func (p *Proxy) decide(l *link) (forward bool, delay time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mode != Forward || l.lossy {
		l.lossy = true
		return false, 0
	}
	return true, p.delay
}
