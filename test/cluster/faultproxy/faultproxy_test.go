package faultproxy

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// echoServer answers every line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func startProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := Listen(target)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func dial(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// roundTrip sends a line and returns the answer, or the read error after
// the bound.
func roundTrip(c net.Conn, r *bufio.Reader, line string, bound time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(bound))
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	got, err := r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func TestFaultProxyForwardBlackholeHeal(t *testing.T) {
	p := startProxy(t, echoServer(t))
	c, r := dial(t, p.Addr())
	if got, err := roundTrip(c, r, "one", time.Second); err != nil || got != "one" {
		t.Fatalf("forward: %q %v", got, err)
	}
	p.Blackhole()
	if got, err := roundTrip(c, r, "two", 200*time.Millisecond); err == nil {
		t.Fatalf("blackholed link answered %q", got)
	}
	c2, r2 := dial(t, p.Addr()) // accepted while blackholed
	if got, err := roundTrip(c2, r2, "three", 200*time.Millisecond); err == nil {
		t.Fatalf("link opened while blackholed answered %q", got)
	}
	p.Heal()
	// The lossy links are closed; a new one forwards.
	if _, err := roundTrip(c, r, "four", time.Second); err == nil {
		t.Fatal("a link that lost bytes survived Heal")
	}
	c3, r3 := dial(t, p.Addr())
	if got, err := roundTrip(c3, r3, "five", time.Second); err != nil || got != "five" {
		t.Fatalf("after heal: %q %v", got, err)
	}
}

func TestFaultProxyDropAndDelay(t *testing.T) {
	p := startProxy(t, echoServer(t))
	c, r := dial(t, p.Addr())
	p.Delay(150 * time.Millisecond)
	start := time.Now()
	if got, err := roundTrip(c, r, "slow", 2*time.Second); err != nil || got != "slow" {
		t.Fatalf("delayed: %q %v", got, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("round trip through a 150ms delay each way took %v", d)
	}
	p.Drop()
	if _, err := roundTrip(c, r, "x", time.Second); err == nil {
		t.Fatal("open link survived Drop")
	}
	c2, r2 := dial(t, p.Addr())
	if _, err := roundTrip(c2, r2, "y", time.Second); err == nil {
		t.Fatal("new link forwarded while dropping")
	}
}

func TestFaultProxyRefusesNonLoopback(t *testing.T) {
	if _, err := Listen("10.0.0.1:9092"); err == nil {
		t.Fatal("proxy to 10.0.0.1 accepted")
	}
	if _, err := ListenOn("0.0.0.0:0", "127.0.0.1:1"); err == nil {
		t.Fatal("proxy listening on all interfaces accepted")
	}
}
