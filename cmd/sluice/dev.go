package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// Limits and timings of `sluice dev cluster`.
const (
	// devMaxNodes bounds --nodes: a local cluster for trying things out,
	// where each node is a process with its own listeners and fsyncs.
	devMaxNodes = 16
	// devStopTimeout is how long a node has to stop after SIGTERM before it
	// is killed. A node stops within a few seconds (answer requests in
	// flight, controlled shutdown, close logs); a much longer wait means
	// it is stuck, and a user pressing Ctrl-C wants the terminal back.
	devStopTimeout = 20 * time.Second
	// devReadyLine is what `sluice serve` prints once it serves clients.
	devReadyLine = "sluice: accepting Kafka clients on "
	// devMaxLineBytes bounds the part of a child's log line kept to look
	// for devReadyLine; longer lines are still copied through whole.
	devMaxLineBytes = 4096
)

func newDevCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "dev",
		Short:   "Tools for trying Sluice out locally",
		Example: "  sluice dev cluster",
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newDevClusterCmd())
	return cmd
}

// devClusterOptions are the flags of `sluice dev cluster`.
type devClusterOptions struct {
	nodes          int
	dir            string
	port           int
	controllerPort int
	sets           []string
	logLevel       string
}

func newDevClusterCmd() *cobra.Command {
	var o devClusterOptions
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Run a local multi-node cluster (every node a voter and a broker)",
		Long: "Run N `sluice serve` processes on this machine as one cluster: each node is a\n" +
			"controller (a voter of one metadata quorum) and a broker. Node i listens for\n" +
			"Kafka clients on 127.0.0.1:PORT+i-1 and for the quorum on\n" +
			"127.0.0.1:CONTROLLER-PORT+i-1, with its data under DIR/node-i. Their log lines\n" +
			"are prefixed with [node i]. Ctrl-C (or SIGTERM) stops every node cleanly.\n\n" +
			"If a node exits once the cluster is up, the others keep running, so you can\n" +
			"watch the cluster carry on without it. For a real deployment run `sluice serve`\n" +
			"on each machine instead (see the README's \"A three-node cluster\").",
		Example: "  sluice dev cluster\n" +
			"  sluice dev cluster --nodes 5 --dir /tmp/sluice --port 29092 --controller-port 39092\n" +
			"  sluice dev cluster --set log.retention.hours=1",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDevCluster(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.nodes, "nodes", 3, "how many nodes (1 to "+strconv.Itoa(devMaxNodes)+")")
	f.StringVar(&o.dir, "dir", filepath.Join("data", "dev-cluster"), "data directory; node i keeps its data under DIR/node-i")
	f.IntVar(&o.port, "port", 9092, "Kafka client port of node 1; node i gets PORT+i-1")
	f.IntVar(&o.controllerPort, "controller-port", 19092, "quorum port of node 1; node i gets CONTROLLER-PORT+i-1")
	f.StringArrayVar(&o.sets, "set", nil, "a config key for every node, Kafka's name: --set log.retention.hours=1 (repeatable)")
	f.StringVar(&o.logLevel, "log-level", "info", "the nodes' log level: debug, info, warn or error")
	return cmd
}

// devNode is one child `sluice serve`.
type devNode struct {
	id             int
	clientAddr     string
	controllerAddr string
	dir            string
	cmd            *exec.Cmd
	exited         chan struct{} // closed once Wait returned; err is then set
	err            error
}

// devEvent is a node becoming ready or exiting.
type devEvent struct {
	node  *devNode
	ready bool
}

// validate checks the flags before any process starts: every error is a
// usage error, and a bad port range found later would leave half a
// cluster running.
func (o devClusterOptions) validate() error {
	if o.nodes < 1 || o.nodes > devMaxNodes {
		return usageErrorf("--nodes %d: want 1 to %d", o.nodes, devMaxNodes)
	}
	for _, p := range []struct {
		flag string
		port int
	}{{"--port", o.port}, {"--controller-port", o.controllerPort}} {
		if p.port < 1 || p.port+o.nodes-1 > 65535 {
			return usageErrorf("%s %d: the %d ports from it must be in 1 to 65535", p.flag, p.port, o.nodes)
		}
	}
	// The two ranges [port, port+n) and [controllerPort, controllerPort+n)
	// overlap exactly when each starts before the other ends.
	if o.port < o.controllerPort+o.nodes && o.controllerPort < o.port+o.nodes {
		return usageErrorf("--port %d and --controller-port %d: the ranges of %d ports overlap", o.port, o.controllerPort, o.nodes)
	}
	for _, s := range o.sets {
		if !strings.Contains(s, "=") {
			return usageErrorf("--set %q: want key=value", s)
		}
	}
	return nil
}

// plan lays the nodes out: addresses, directories and the voters list
// every node is given.
func (o devClusterOptions) plan() (nodes []*devNode, voters string) {
	var list []string
	for i := 1; i <= o.nodes; i++ {
		// Loopback only: a dev cluster is for this machine, and an
		// address clients can always resolve keeps the summary's
		// commands working as printed.
		n := &devNode{
			id:             i,
			clientAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port+i-1)),
			controllerAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(o.controllerPort+i-1)),
			dir:            filepath.Join(o.dir, "node-"+strconv.Itoa(i)),
			exited:         make(chan struct{}),
		}
		nodes = append(nodes, n)
		list = append(list, fmt.Sprintf("%d@%s", i, n.controllerAddr))
	}
	return nodes, strings.Join(list, ",")
}

// checkPortsFree fails fast, naming the port and what it was for, rather
// than letting N children fail one by one with the same bind error.
func checkPortsFree(nodes []*devNode) error {
	for _, n := range nodes {
		for _, p := range []struct{ addr, what string }{
			{n.clientAddr, "Kafka listener"}, {n.controllerAddr, "controller listener"},
		} {
			// Racy by nature (the port may be taken between this check
			// and the child's bind), but it turns the common case, an
			// old cluster still running, into one clear message.
			ln, err := net.Listen("tcp", p.addr)
			if err != nil {
				_, port, _ := net.SplitHostPort(p.addr)
				return fmt.Errorf("port %s (node %d's %s) is not free: %w; choose others with --port and --controller-port", port, n.id, p.what, err)
			}
			ln.Close()
		}
	}
	return nil
}

func runDevCluster(ctx context.Context, o devClusterOptions, stdout, stderr io.Writer) error {
	if err := o.validate(); err != nil {
		return err
	}
	// The nodes run this very binary, so they are the same version: the
	// controllers' forwarding is only defined between equal builds.
	binary, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the sluice binary to run the nodes with: %w", err)
	}
	nodes, voters := o.plan()
	if err := checkPortsFree(nodes); err != nil {
		return err
	}
	logs := &lockedWriter{w: stderr}
	// Room for every node's two events (ready, exited), so a child's
	// goroutine never blocks on a supervisor that has already returned.
	events := make(chan devEvent, 2*len(nodes))
	var started []*devNode
	// A node that fails to start takes the ones already started down with
	// it: a partial cluster would wait for a quorum that never forms.
	for _, n := range nodes {
		if err := n.start(binary, voters, o, logs, events); err != nil {
			stopDevNodes(started, logs)
			return err
		}
		started = append(started, n)
	}
	return superviseDevNodes(ctx, nodes, o, stdout, logs, events)
}

// superviseDevNodes waits for every node to be ready, prints how to use
// the cluster, and then keeps it running until ctx ends. A node that exits
// before the cluster is up fails the whole start (its log says why, and
// the same cause usually hits every node); after that, one that exits is
// reported and the others carry on until none is left.
func superviseDevNodes(ctx context.Context, nodes []*devNode, o devClusterOptions, stdout io.Writer, logs *lockedWriter, events <-chan devEvent) error {
	ready, alive := 0, len(nodes)
	for {
		select {
		case <-ctx.Done():
			logs.printf("sluice dev cluster: stopping %d node(s)\n", alive)
			stopDevNodes(nodes, logs)
			return nil
		case ev := <-events:
			if ev.ready {
				if ready++; ready == len(nodes) {
					printDevSummary(stdout, nodes, o)
				}
				continue
			}
			alive--
			if ready < len(nodes) {
				stopDevNodes(nodes, logs)
				return fmt.Errorf("node %d exited before the cluster was up (%v); its log lines above say why", ev.node.id, exitDescription(ev.node.err))
			}
			if alive == 0 {
				return fmt.Errorf("every node has exited; the last was node %d (%v)", ev.node.id, exitDescription(ev.node.err))
			}
			logs.printf("sluice dev cluster: node %d exited (%v); the other %d keep running (Ctrl-C stops them)\n", ev.node.id, exitDescription(ev.node.err), alive)
		}
	}
}

func exitDescription(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func printDevSummary(w io.Writer, nodes []*devNode, o devClusterOptions) {
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.clientAddr)
	}
	bootstrap := strings.Join(addrs, ",")
	fmt.Fprintf(w, "\nsluice dev cluster: %d nodes ready\n\n", len(nodes))
	for _, n := range nodes {
		fmt.Fprintf(w, "  node %d  clients %s  quorum %s  pid %d  data %s\n", n.id, n.clientAddr, n.controllerAddr, n.cmd.Process.Pid, n.dir)
	}
	// The suggested replication factor is 3 where the cluster can hold it,
	// the usual production choice, so the example shows replication.
	r := min(3, len(nodes))
	fmt.Fprintf(w, "\nBootstrap servers: %s\n\nTry it (in another terminal):\n\n", bootstrap)
	fmt.Fprintf(w, "  export %s=%s\n", brokersEnv, bootstrap)
	fmt.Fprintf(w, "  sluice topic create t -r %d\n  sluice cluster info\n", r)
	fmt.Fprintf(w, "  sluice topic describe t\n\nCtrl-C stops every node.\n\n")
}

// start runs the node's `sluice serve`. Its output goes to logs with a
// "[node i] " prefix; events learns when it is ready and when it exits.
func (n *devNode) start(binary, voters string, o devClusterOptions, logs *lockedWriter, events chan<- devEvent) error {
	// Each node's HTTP listener takes a free loopback port (its address is
	// in the node's "serving HTTP" line): the nodes share one host.
	args := []string{"serve", "--data-dir", n.dir, "--listen", n.clientAddr, "--http", "127.0.0.1:0", "--log-level", o.logLevel,
		"--set", "node.id=" + strconv.Itoa(n.id),
		"--set", "process.roles=broker,controller",
		"--set", "controller.quorum.voters=" + voters,
	}
	// The user's settings last: later --set wins, so they can override
	// anything, at their own risk for the identity keys above.
	for _, s := range o.sets {
		args = append(args, "--set", s)
	}
	out := &prefixWriter{prefix: fmt.Sprintf("[node %d] ", n.id), dst: logs, onLine: func(line []byte) {
		if bytes.HasPrefix(line, []byte(devReadyLine)) {
			events <- devEvent{node: n, ready: true}
		}
	}}
	n.cmd = exec.Command(binary, args...)
	n.cmd.Stdout, n.cmd.Stderr = out, out
	n.cmd.SysProcAttr = devSysProcAttr()
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("start node %d (%s): %w", n.id, binary, err)
	}
	go func() {
		n.err = n.cmd.Wait()
		close(n.exited)
		events <- devEvent{node: n}
	}()
	return nil
}

// stopDevNodes sends SIGTERM to every node still running, then waits up to
// devStopTimeout for them all before killing the rest.
func stopDevNodes(nodes []*devNode, logs *lockedWriter) {
	for _, n := range nodes {
		select {
		case <-n.exited:
		default:
			if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				logs.printf("sluice dev cluster: node %d: SIGTERM: %v\n", n.id, err)
			}
		}
	}
	deadline := time.NewTimer(devStopTimeout)
	defer deadline.Stop()
	for _, n := range nodes {
		select {
		case <-n.exited:
		case <-deadline.C:
			// Expired: kill this one and, below, every other straggler.
			deadline.Reset(0)
			logs.printf("sluice dev cluster: node %d did not stop within %v; killing it\n", n.id, devStopTimeout)
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
}

// lockedWriter serializes whole writes from several children's output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write holds the lock for a whole write; prefixWriter writes whole lines,
// so lines from different nodes never interleave.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *lockedWriter) printf(format string, args ...any) {
	fmt.Fprintf(l, format, args...)
}

// prefixWriter copies a child's output to dst a whole line at a time,
// each line prefixed, so nodes' lines never interleave mid-line. onLine
// sees each line (its first devMaxLineBytes bytes) without the newline.
type prefixWriter struct {
	prefix string
	dst    io.Writer
	onLine func(line []byte)

	pending []byte // the current line so far, at most devMaxLineBytes
	long    bool   // the current line outgrew pending and was flushed in part
}

// Write always reports the whole of b written, whatever dst did: an
// error would stop os/exec's copying from the child's pipe, and the child
// would then block on a full pipe or die writing to a closed one. A lost
// log line must not take a node down.
func (p *prefixWriter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			p.pending = append(p.pending, b...)
			if len(p.pending) > devMaxLineBytes {
				p.flush(false)
			}
			return n, nil
		}
		p.pending = append(p.pending, b[:i]...)
		p.flush(true)
		b = b[i+1:]
	}
	return n, nil
}

// flush writes pending; a line that ends is handed to onLine unless it was
// too long to keep whole.
func (p *prefixWriter) flush(endOfLine bool) {
	var out []byte
	if !p.long {
		out = append(out, p.prefix...)
	}
	// The prefix goes only on a line's first piece: the rest of a long
	// line continues it on the terminal and must not be split again.
	out = append(out, p.pending...)
	if endOfLine {
		out = append(out, '\n')
		if !p.long {
			p.onLine(p.pending)
		}
	}
	_, _ = p.dst.Write(out)
	p.pending, p.long = p.pending[:0], !endOfLine
}
