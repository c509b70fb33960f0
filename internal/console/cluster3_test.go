package console_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/sluicelog/sluice/internal/console"
	"github.com/sluicelog/sluice/internal/node"
	"github.com/sluicelog/sluice/internal/vfs"
)

// freeAddrs finds n free loopback addresses by binding and closing.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		defer ln.Close()
	}
	return addrs
}

// startThree starts three in-process nodes, each a voter and a broker, and
// returns them with their Kafka addresses. Free ports are found by binding
// and closing, so a start that loses a port to another process is tried
// again on fresh ones.
func startThree(t *testing.T) ([]*node.Node, []string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		nodes, clients, err := tryStartThree(t)
		if err == nil {
			t.Cleanup(func() {
				for _, n := range nodes {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					_ = n.Shutdown(ctx) // stopping a node twice is harmless
					cancel()
				}
			})
			return nodes, clients
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
	}
}

func tryStartThree(t *testing.T) ([]*node.Node, []string, error) {
	ctrl, clients := freeAddrs(t, 3), freeAddrs(t, 3)
	var voters []string
	for i := range 3 {
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, ctrl[i]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	nodes, errs := make([]*node.Node, 3), make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			cfg, _, err := config.Load(vfs.OS(), config.Sources{Sets: []string{
				"log.dirs=" + filepath.Join(t.TempDir(), fmt.Sprint("node", i+1)), "listeners=PLAINTEXT://" + clients[i],
				fmt.Sprint("node.id=", i+1), "controller.quorum.voters=" + strings.Join(voters, ","), "http.listener=127.0.0.1:0",
				"broker.heartbeat.interval.ms=200", "broker.session.timeout.ms=2000", "replica.fetch.wait.max.ms=200"}})
			if err == nil {
				nodes[i], err = node.Start(ctx, node.Options{Config: cfg, Logger: quietLogger})
			}
			if errs[i] = err; err != nil {
				cancel() // the others would wait for a quorum that cannot form
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, n := range nodes {
			if n != nil {
				_ = n.Shutdown(context.Background())
			}
		}
		return nil, nil, err
	}
	return nodes, clients, nil
}

// TestConsoleThreeNodes: a console that knows only node 3 shows the whole
// cluster: three brokers, the quorum with one leader and two followers,
// replicated partitions, and an under-replicated count once a node stops.
func TestConsoleThreeNodes(t *testing.T) {
	nodes, clients := startThree(t)
	c := &cluster{node: nodes[2]}
	con, err := console.New(console.Options{Brokers: clients[2:], Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer con.Close()
	c.console = con
	c.url = serveConsole(t, con)
	c.http = noRedirects()
	cl, err := kgo.NewClient(kgo.SeedBrokers(clients...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 3, nil, "rep"); err != nil {
		t.Fatal(err)
	}
	body := c.mustGet(t, "/", append(clients, "leader (active controller)")...)
	if n := strings.Count(body, "<td>follower</td>"); n != 2 {
		t.Fatalf("the quorum table has %d followers, want 2:\n%s", n, body)
	}
	body = c.mustGet(t, "/topics/rep")
	if n := len(threeReplicas.FindAllString(body, -1)); n != 4 {
		t.Fatalf("want replicas and ISR of 3 brokers on both partitions, found %d lists:\n%s", n, body)
	}

	// Node 1 stops: its replicas leave the ISR, and the cluster page says so.
	ctxStop, cancelStop := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelStop()
	if err := nodes[0].Shutdown(ctxStop); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		_, body := c.get(t, "/")
		if strings.Contains(body, `id="under-replicated" class="bad">2<`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster page never showed 2 under-replicated partitions:\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var threeReplicas = regexp.MustCompile(`<td>[123],[123],[123]</td>`)
