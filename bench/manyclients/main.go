// Command manyclients is the client side of bench/connections.sh and
// bench/groups.sh: it opens many idle connections to a broker, or creates
// many consumer groups with committed offsets and then times how soon a
// restarted broker answers OffsetFetch for every one of them. The scripts
// own the broker process and read its memory and CPU from /proc; this
// program only speaks Kafka. It is in the bench module so Sluice's binary
// never depends on it.
//
//	manyclients connections -brokers ADDR -n 10000
//	manyclients groups-create -brokers ADDR -groups 10000 -partitions 4
//	manyclients groups-wait -brokers ADDR -groups 10000 -partitions 4 -start UNIX_NS
//	manyclients longpoll -brokers ADDR -consumers 1000 -max-wait 500ms
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix("manyclients: ")
	if len(os.Args) < 2 {
		log.Fatal("usage: manyclients connections|groups-create|groups-wait|longpoll [flags]")
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "connections":
		err = connections(args)
	case "groups-create":
		err = groupsCreate(args)
	case "groups-wait":
		err = groupsWait(args)
	case "longpoll":
		err = longPoll(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// connections opens n connections, sends ApiVersions v0 on each (what every
// client sends first), reads the answer, prints "open N" and then holds
// them idle until SIGTERM, SIGINT or the end of stdin.
func connections(args []string) error {
	fs := flag.NewFlagSet("connections", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "broker address")
	n := fs.Int("n", 10000, "connections to open")
	parallel := fs.Int("parallel", 32, "connections opened at once")
	_ = fs.Parse(args)
	if err := raiseFileLimit(); err != nil {
		return err
	}
	conns := make([]net.Conn, *n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var next atomic.Int64
	errs := make(chan error, *parallel)
	var wg sync.WaitGroup
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				c, err := openWithApiVersions(*brokers, int32(i))
				if err != nil {
					errs <- fmt.Errorf("connection %d: %w", i, err)
					next.Store(int64(*n))
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Printf("open %d\n", *n)
	waitForStop()
	return nil
}

// openWithApiVersions dials and does one ApiVersions v0 round trip.
func openWithApiVersions(addr string, correlationID int32) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	const clientID = "manyclients"
	// Request header v1 (key, version, correlation id, client id); the
	// v0 body is empty.
	req := binary.BigEndian.AppendUint32(nil, uint32(2+2+4+2+len(clientID)))
	req = binary.BigEndian.AppendUint16(req, 18)
	req = binary.BigEndian.AppendUint16(req, 0)
	req = binary.BigEndian.AppendUint32(req, uint32(correlationID))
	req = binary.BigEndian.AppendUint16(req, uint16(len(clientID)))
	req = append(req, clientID...)
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(req); err != nil {
		c.Close()
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("reading ApiVersions response: %w", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c, body); err != nil {
		c.Close()
		return nil, fmt.Errorf("reading ApiVersions response: %w", err)
	}
	if len(body) < 6 || int32(binary.BigEndian.Uint32(body)) != correlationID || binary.BigEndian.Uint16(body[4:]) != 0 {
		c.Close()
		return nil, errors.New("unexpected ApiVersions response")
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

func raiseFileLimit() error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	lim.Cur = lim.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
}

func waitForStop() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	select {
	case <-stop:
	case <-stdinClosed:
	}
}

type groupFlags struct {
	brokers    *string
	groups     *int
	partitions *int
	topic      *string
}

func newGroupFlags(fs *flag.FlagSet) groupFlags {
	return groupFlags{
		brokers:    fs.String("brokers", "127.0.0.1:9092", "broker address"),
		groups:     fs.Int("groups", 10000, "consumer groups"),
		partitions: fs.Int("partitions", 4, "partitions each group commits an offset for"),
		topic:      fs.String("topic", "manyclients", "the topic the groups commit offsets of"),
	}
}

func groupName(i int) string { return fmt.Sprintf("manyclients-%06d", i) }

// committedOffset is what group i commits for partition p, so that the
// wait can check every offset came back, not just an answer.
func committedOffset(i, p int) int64 { return int64(i)*100 + int64(p) }

func newClient(brokers string) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(brokers),
		kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond }))
}

// groupsCreate creates the topic and commits offsets for every group as
// a simple group (generation -1, no member): the commit path the
// coordinator stores without a rebalance.
func groupsCreate(args []string) error {
	fs := flag.NewFlagSet("groups-create", flag.ExitOnError)
	gf := newGroupFlags(fs)
	parallel := fs.Int("parallel", 64, "commits in flight")
	_ = fs.Parse(args)
	cl, err := newClient(*gf.brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := createTopic(ctx, cl, *gf.topic, int32(*gf.partitions)); err != nil {
		return err
	}
	start := time.Now()
	var next atomic.Int64
	errs := make(chan error, *parallel)
	var wg sync.WaitGroup
	for range *parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= *gf.groups {
					return
				}
				if err := commit(ctx, cl, gf, i); err != nil {
					errs <- err
					next.Store(int64(*gf.groups))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	log.Printf("committed %d groups × %d partitions in %v", *gf.groups, *gf.partitions, time.Since(start).Round(time.Millisecond))
	return nil
}

func createTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, partitions, 1
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return nil
}

func commit(ctx context.Context, cl *kgo.Client, gf groupFlags, i int) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = groupName(i), -1
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic = *gf.topic
	for p := range *gf.partitions {
		tp := kmsg.NewOffsetCommitRequestTopicPartition()
		tp.Partition, tp.Offset, tp.LeaderEpoch = int32(p), committedOffset(i, p), -1
		t.Partitions = append(t.Partitions, tp)
	}
	req.Topics = append(req.Topics, t)
	// The first commits find __consumer_offsets still being created:
	// retry what Kafka calls retriable, as a consumer would.
	for {
		err := commitOnce(ctx, cl, req)
		if err == nil || !kerr.IsRetriable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func commitOnce(ctx context.Context, cl *kgo.Client, req *kmsg.OffsetCommitRequest) error {
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("committing %s: %w", req.Group, err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return fmt.Errorf("committing %s: %w", req.Group, err)
			}
		}
	}
	return nil
}

// groupsWait times, from -start (when the script started the broker), the
// first group whose offsets come back and the moment every group's
// offsets have come back right, and prints both as JSON.
func groupsWait(args []string) error {
	fs := flag.NewFlagSet("groups-wait", flag.ExitOnError)
	gf := newGroupFlags(fs)
	startNs := fs.Int64("start", 0, "when the broker was started, Unix ns; default now")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long")
	batch := fs.Int("batch", 500, "groups per OffsetFetch request (v8 asks for many groups at once)")
	httpAddr := fs.String("http", "", "the broker's http.listener: time its start-up stage of loading groups from /readyz")
	_ = fs.Parse(args)
	start := time.Now()
	if *startNs != 0 {
		start = time.Unix(0, *startNs)
	}
	var stage <-chan float64
	if *httpAddr != "" {
		stage = timeGroupsStage("http://"+*httpAddr+"/readyz", start.Add(*timeout))
	}
	cl, err := newClient(*gf.brokers)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(*timeout))
	defer cancel()
	var firstMs float64
	pending := make([]int, *gf.groups)
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		if ctx.Err() != nil {
			return fmt.Errorf("%d of %d groups still without their offsets after %v", len(pending), *gf.groups, *timeout)
		}
		n := min(*batch, len(pending))
		failed := fetchGroups(ctx, cl, gf, pending[:n])
		if len(failed) < n && firstMs == 0 {
			firstMs = msSince(start)
		}
		pending = append(pending[n:], failed...)
		if len(failed) == n {
			time.Sleep(5 * time.Millisecond)
		}
	}
	result := map[string]any{
		"groups": *gf.groups, "partitions": *gf.partitions,
		"first_group_ms": firstMs, "all_groups_ms": msSince(start),
	}
	if stage != nil {
		result["groups_stage_ms"] = <-stage
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
	return nil
}

// groupsStage is how /readyz names the start-up stage that replays
// __consumer_offsets (internal/node's stageGroups).
const groupsStage = "loading consumer groups"

// timeGroupsStage polls readyz every millisecond and sends how long its
// body named the groups stage, from the first poll that saw it to the
// first that did not: the group coordinator's load, apart from the
// stages before it (a restart after kill -9 waits for its old broker
// session first). -1 if no poll saw the stage (shorter than a poll).
func timeGroupsStage(readyz string, deadline time.Time) <-chan float64 {
	out := make(chan float64, 1)
	go func() {
		hc := &http.Client{Timeout: time.Second}
		var seen time.Time
		for time.Now().Before(deadline) {
			resp, err := hc.Get(readyz)
			if err != nil {
				time.Sleep(time.Millisecond)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			inStage := strings.Contains(string(body), groupsStage)
			switch {
			case inStage && seen.IsZero():
				seen = time.Now()
			case !inStage && !seen.IsZero():
				out <- msSince(seen)
				return
			case resp.StatusCode == http.StatusOK:
				out <- -1
				return
			}
			time.Sleep(time.Millisecond)
		}
		out <- -1
	}()
	return out
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// fetchGroups asks for the offsets of some groups and returns those whose
// answer was an error or not the offsets groupsCreate committed.
func fetchGroups(ctx context.Context, cl *kgo.Client, gf groupFlags, ids []int) []int {
	req := kmsg.NewPtrOffsetFetchRequest()
	req.Version = 8
	byName := make(map[string]int, len(ids))
	for _, i := range ids {
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = groupName(i)
		t := kmsg.NewOffsetFetchRequestGroupTopic()
		t.Topic = *gf.topic
		for p := range *gf.partitions {
			t.Partitions = append(t.Partitions, int32(p))
		}
		g.Topics = append(g.Topics, t)
		req.Groups = append(req.Groups, g)
		byName[g.Group] = i
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(rctx, cl)
	if err != nil {
		return ids
	}
	var failed []int
	for _, g := range resp.Groups {
		i, ok := byName[g.Group]
		if !ok {
			continue
		}
		delete(byName, g.Group)
		if !offsetsMatch(g, gf, i) {
			failed = append(failed, i)
		}
	}
	for _, i := range byName { // not answered at all
		failed = append(failed, i)
	}
	return failed
}

func offsetsMatch(g kmsg.OffsetFetchResponseGroup, gf groupFlags, i int) bool {
	if g.ErrorCode != 0 {
		return false
	}
	seen := 0
	for _, t := range g.Topics {
		for _, p := range t.Partitions {
			if t.Topic != *gf.topic || p.ErrorCode != 0 || p.Offset != committedOffset(i, int(p.Partition)) {
				return false
			}
			seen++
		}
	}
	return seen == *gf.partitions
}

// longPoll creates a topic of one partition per consumer and runs that many
// consumers, each on its own connection long-polling its own empty
// partition: Fetch at the log end with min bytes 1 and -max-wait, as a
// caught-up consumer does (the Java client's fetch.max.wait.ms is 500 ms,
// franz-go's 5 s). It prints "polling N" once every consumer has had its
// first answer, and at the end (SIGTERM, SIGINT, end of stdin) the fetches
// answered per second.
func longPoll(args []string) error {
	fs := flag.NewFlagSet("longpoll", flag.ExitOnError)
	brokers := fs.String("brokers", "127.0.0.1:9092", "broker address")
	consumers := fs.Int("consumers", 1000, "consumers, each with its own partition and connection")
	topic := fs.String("topic", "manyclients-idle", "the idle topic, created with one partition per consumer")
	maxWait := fs.Duration("max-wait", 500*time.Millisecond, "Fetch max_wait_ms")
	_ = fs.Parse(args)
	if err := raiseFileLimit(); err != nil {
		return err
	}
	cl, err := newClient(*brokers)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = createTopic(ctx, cl, *topic, int32(*consumers))
	cancel()
	cl.Close()
	if err != nil {
		return err
	}
	var answered atomic.Int64
	var first sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, *consumers)
	first.Add(*consumers)
	for p := range *consumers {
		go func() {
			errs <- pollPartition(*brokers, *topic, int32(p), *maxWait, &answered, first.Done, stop)
		}()
	}
	firstDone := make(chan struct{})
	go func() { first.Wait(); close(firstDone) }()
	select {
	case <-firstDone:
	case err := <-errs:
		return err
	}
	fmt.Printf("polling %d\n", *consumers)
	start, before := time.Now(), answered.Load()
	waitForStop()
	close(stop)
	fmt.Printf("fetches_per_sec %.1f\n", float64(answered.Load()-before)/time.Since(start).Seconds())
	return nil
}

// pollPartition long-polls one partition until stop, calling started after
// the first answer. Any error or non-empty answer ends it with an error:
// the partition must stay idle.
func pollPartition(addr, topic string, partition int32, maxWait time.Duration, answered *atomic.Int64,
	started func(), stop <-chan struct{}) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { <-stop; c.Close() }()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 11 // before flexible versions: a v0 response header
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, int32(maxWait/time.Millisecond), 1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = partition, 0, 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("manyclients"))
	var buf []byte
	polling := false
	for corr := int32(0); ; corr++ {
		buf = formatter.AppendRequest(buf[:0], req, corr)
		if _, err := c.Write(buf); err != nil {
			return stopped(stop, err)
		}
		var size [4]byte
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return stopped(stop, err)
		}
		body := make([]byte, binary.BigEndian.Uint32(size[:]))
		if _, err := io.ReadFull(c, body); err != nil {
			return stopped(stop, err)
		}
		resp := kmsg.NewPtrFetchResponse()
		resp.Version = req.Version
		if len(body) < 4 || int32(binary.BigEndian.Uint32(body)) != corr {
			return errors.New("fetch response out of order")
		}
		if err := resp.ReadFrom(body[4:]); err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("fetch %s-%d: %w", topic, partition, err)
		}
		if err := partitionError(resp); err != nil {
			// Right after CreateTopics a partition may have no leader
			// yet: retry as a consumer would, not counted.
			if !kerr.IsRetriable(err) {
				return fmt.Errorf("fetch %s-%d: %w", topic, partition, err)
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		answered.Add(1)
		if !polling {
			polling = true
			started()
		}
	}
}

func partitionError(resp *kmsg.FetchResponse) error {
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
			if len(p.RecordBatches) > 0 {
				return errors.New("records in the idle partition")
			}
		}
	}
	return nil
}

func stopped(stop <-chan struct{}, err error) error {
	select {
	case <-stop:
		return nil
	default:
		return err
	}
}
