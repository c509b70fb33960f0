// Command nullbroker is a Kafka broker that stores nothing: it answers
// produce requests with offsets and drops the records, without checking
// them. It measures the ceiling of a load generator (franz-go in `sluice
// bench produce`) on this machine, the figure Sluice's produce throughput
// is compared with; it serves only what that load needs (ApiVersions,
// Metadata, CreateTopics, InitProducerId, Produce, and ListOffsets for a
// bench that waits for its partitions) and closes the connection on
// anything else.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// defaultPartitions is the size of a topic created by Metadata.
const defaultPartitions = 8

type broker struct {
	host string
	port int32

	mu         sync.Mutex
	topics     map[string]int32 // partitions
	offsets    map[string][]int64
	producerID int64
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	b := &broker{host: addr.IP.String(), port: int32(addr.Port), topics: map[string]int32{}, offsets: map[string][]int64{}}
	// The line compare scripts wait for, as `sluice serve` prints it.
	fmt.Fprintf(log.Writer(), "nullbroker: accepting Kafka clients on %s\n", addr)
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go b.serve(c)
	}
}

func (b *broker) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 1<<20)
	w := bufio.NewWriterSize(c, 64<<10)
	var size [4]byte
	var frame, out []byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n < 8 || n > 128<<20 {
			return
		}
		if cap(frame) < n {
			frame = make([]byte, n)
		}
		frame = frame[:n]
		if _, err := io.ReadFull(r, frame); err != nil {
			return
		}
		var err error
		out, err = b.handle(frame, out[:0])
		if err != nil {
			log.Printf("nullbroker: %v", err)
			return
		}
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return
			}
		}
		// Write when no more requests are buffered: pipelined requests'
		// responses go out in one write.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// handle answers one request frame, appending the response frame to out
// (nothing for acks=0 produce).
func (b *broker) handle(frame, out []byte) ([]byte, error) {
	key := int16(binary.BigEndian.Uint16(frame))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	correlation := int32(binary.BigEndian.Uint32(frame[4:]))
	req := kmsg.RequestForKey(key)
	if req == nil {
		return nil, fmt.Errorf("unknown key %d", key)
	}
	req.SetVersion(version)
	body, err := skipHeader(frame[8:], req.IsFlexible() && key != 18 || key == 18 && version >= 3)
	if err != nil {
		return nil, err
	}
	if err := req.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("%s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	resp := b.answer(req)
	if resp == nil {
		return out, nil
	}
	start := len(out)
	out = append(out, 0, 0, 0, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(correlation))
	if resp.IsFlexible() && key != 18 {
		out = append(out, 0) // response header v1: no tagged fields
	}
	out = resp.AppendTo(out)
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4))
	return out, nil
}

// skipHeader skips the client id and, in a flexible header, its tags.
func skipHeader(b []byte, flexible bool) ([]byte, error) {
	if len(b) < 2 {
		return nil, errors.New("short header")
	}
	n := int16(binary.BigEndian.Uint16(b))
	b = b[2:]
	if n > 0 {
		if len(b) < int(n) {
			return nil, errors.New("short client id")
		}
		b = b[n:]
	}
	if !flexible {
		return b, nil
	}
	tags, used := binary.Uvarint(b)
	if used <= 0 {
		return nil, errors.New("bad tag count")
	}
	b = b[used:]
	for range tags {
		_, u1 := binary.Uvarint(b)
		if u1 <= 0 {
			return nil, errors.New("bad tag")
		}
		size, u2 := binary.Uvarint(b[u1:])
		if u2 <= 0 || len(b) < u1+u2+int(size) {
			return nil, errors.New("bad tag")
		}
		b = b[u1+u2+int(size):]
	}
	return b, nil
}

// maxVersions caps what is advertised: no topic ids (Produce v13,
// Metadata v13).
var maxVersions = map[int16]int16{0: 12, 2: 7, 3: 12, 18: 3, 19: 7, 22: 5}

func (b *broker) answer(req kmsg.Request) kmsg.Response {
	switch req := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
		for key, maxV := range maxVersions {
			k := kmsg.NewApiVersionsResponseApiKey()
			k.ApiKey, k.MinVersion, k.MaxVersion = key, 0, maxV
			if key == 0 {
				k.MinVersion = 3
			}
			resp.ApiKeys = append(resp.ApiKeys, k)
		}
		return resp
	case *kmsg.MetadataRequest:
		return b.metadata(req)
	case *kmsg.CreateTopicsRequest:
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, t := range req.Topics {
			n := t.NumPartitions
			if n <= 0 {
				n = defaultPartitions
			}
			b.create(t.Topic, n)
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Topic, n, 1
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	case *kmsg.InitProducerIDRequest:
		resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
		b.mu.Lock()
		b.producerID++
		resp.ProducerID = b.producerID
		b.mu.Unlock()
		return resp
	case *kmsg.ProduceRequest:
		return b.produce(req)
	case *kmsg.ListOffsetsRequest:
		return b.listOffsets(req)
	}
	return nil
}

func (b *broker) create(topic string, partitions int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.topics[topic]; !ok {
		b.topics[topic] = partitions
		b.offsets[topic] = make([]int64, partitions)
	}
}

func (b *broker) metadata(req *kmsg.MetadataRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	br := kmsg.NewMetadataResponseBroker()
	br.NodeID, br.Host, br.Port = 0, b.host, b.port
	resp.Brokers = append(resp.Brokers, br)
	resp.ControllerID = 0
	// Only the topics asked for (null asks for all), as a broker answers:
	// a client refreshing 100 topics must not pay for every topic's
	// partitions in each answer.
	names := make(map[string]bool, len(req.Topics))
	for _, t := range req.Topics {
		if t.Topic != nil {
			b.create(*t.Topic, defaultPartitions)
			names[*t.Topic] = true
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for name, n := range b.topics {
		if req.Topics != nil && !names[name] {
			continue
		}
		mt := kmsg.NewMetadataResponseTopic()
		mt.Topic = kmsg.StringPtr(name)
		for p := range n {
			mp := kmsg.NewMetadataResponseTopicPartition()
			mp.Partition, mp.Leader, mp.Replicas, mp.ISR = p, 0, []int32{0}, []int32{0}
			mt.Partitions = append(mt.Partitions, mp)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	return resp
}

func (b *broker) produce(req *kmsg.ProduceRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	b.mu.Lock()
	for _, t := range req.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic = t.Topic
		offsets := b.offsets[t.Topic]
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition = p.Partition
			if int(p.Partition) >= len(offsets) || p.Partition < 0 {
				rp.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
			} else {
				rp.BaseOffset = offsets[p.Partition]
				offsets[p.Partition] += recordCount(p.Records)
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	b.mu.Unlock()
	if req.Acks == 0 {
		return nil
	}
	return resp
}

// listOffsets answers the earliest offset (0: nothing is kept, but the
// offsets count on) and the end offset for any other timestamp.
func (b *broker) listOffsets(req *kmsg.ListOffsetsRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range req.Topics {
		rt := kmsg.NewListOffsetsResponseTopic()
		rt.Topic = t.Topic
		offsets := b.offsets[t.Topic]
		for _, p := range t.Partitions {
			rp := kmsg.NewListOffsetsResponseTopicPartition()
			rp.Partition, rp.LeaderEpoch, rp.Timestamp = p.Partition, 0, -1
			switch {
			case int(p.Partition) >= len(offsets) || p.Partition < 0:
				rp.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
			case p.Timestamp == -2:
				rp.Offset = 0
			default:
				rp.Offset = offsets[p.Partition]
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// recordCount sums the batches' record counts (lastOffsetDelta + 1),
// trusting the client: nothing is checked or kept.
func recordCount(records []byte) int64 {
	var n int64
	for len(records) >= 61 {
		length := int(binary.BigEndian.Uint32(records[8:]))
		n += int64(int32(binary.BigEndian.Uint32(records[23:]))) + 1
		if 12+length > len(records) {
			break
		}
		records = records[12+length:]
	}
	return n
}
