package e2e

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawConn speaks Kafka frames on one TCP connection, so a test controls
// exactly what is pipelined and in which version.
type rawConn struct {
	t    testing.TB
	c    net.Conn
	f    *kmsg.RequestFormatter
	corr int32
}

// maxRawResponse bounds a response frame read by the tests.
const maxRawResponse = 64 << 20

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("sluice-e2e-raw"))}
}

// send writes every request in one write call (so they arrive pipelined)
// and returns their correlation ids.
func (r *rawConn) send(reqs ...kmsg.Request) []int32 {
	r.t.Helper()
	var buf []byte
	var ids []int32
	for _, req := range reqs {
		r.corr++
		ids = append(ids, r.corr)
		// AppendRequest writes the frame size at dst[0:4]: give it a
		// fresh slice per frame.
		buf = append(buf, r.f.AppendRequest(nil, req, r.corr)...)
	}
	_ = r.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.c.Write(buf); err != nil {
		r.t.Fatalf("write %d requests: %v", len(reqs), err)
	}
	return ids
}

// recv reads one response frame into resp (whose version must be set)
// and returns its correlation id. ApiVersions responses always carry
// header v0; other flexible responses carry a tag buffer.
func (r *rawConn) recv(resp kmsg.Response) (int32, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var sizeBuf [4]byte
	if _, err := io.ReadFull(r.c, sizeBuf[:]); err != nil {
		return 0, fmt.Errorf("read frame size: %w", err)
	}
	size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
	if size < 4 || size > maxRawResponse {
		return 0, fmt.Errorf("response frame size %d", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r.c, body); err != nil {
		return 0, fmt.Errorf("read frame: %w", err)
	}
	corr := int32(binary.BigEndian.Uint32(body))
	body = body[4:]
	if resp.IsFlexible() && resp.Key() != kmsg.ApiVersions.Int16() {
		if len(body) < 1 || body[0] != 0 {
			return corr, fmt.Errorf("flexible response header: want an empty tag buffer, got % x", body[:min(len(body), 4)])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		return corr, fmt.Errorf("decode %T v%d: %w", resp, resp.GetVersion(), err)
	}
	return corr, nil
}

// TestE2EPipelinedRawFrames writes many ApiVersions and Metadata requests
// back to back on one connection, in several versions (flexible and not),
// and reads the responses: all answered, strictly in request order.
func TestE2EPipelinedRawFrames(t *testing.T) {
	b := startBroker(t)
	rc := dialRaw(t, b.Addr())
	type sent struct {
		key, version int16
	}
	var reqs []kmsg.Request
	var kinds []sent
	for i := 0; i < 30; i++ {
		av := kmsg.NewPtrApiVersionsRequest()
		av.SetVersion(int16(i % 5))
		if av.Version >= 3 {
			av.ClientSoftwareName, av.ClientSoftwareVersion = "sluice-e2e", "1.0"
		}
		md := kmsg.NewPtrMetadataRequest()
		md.SetVersion(int16(i % 13))
		md.Topics = []kmsg.MetadataRequestTopic{} // v1+: no topics; v0: all
		reqs = append(reqs, av, md)
		kinds = append(kinds, sent{av.Key(), av.Version}, sent{md.Key(), md.Version})
	}
	ids := rc.send(reqs...)
	for i, k := range kinds {
		resp := kmsg.ResponseForKey(k.key)
		resp.SetVersion(k.version)
		corr, err := rc.recv(resp)
		if err != nil {
			t.Fatalf("response %d (key %d v%d): %v", i, k.key, k.version, err)
		}
		if corr != ids[i] {
			t.Fatalf("response %d: correlation id %d, want %d (responses out of order)", i, corr, ids[i])
		}
		switch r := resp.(type) {
		case *kmsg.ApiVersionsResponse:
			if r.ErrorCode != 0 || len(r.ApiKeys) == 0 {
				t.Errorf("ApiVersions v%d: error %d, %d keys", k.version, r.ErrorCode, len(r.ApiKeys))
			}
		case *kmsg.MetadataResponse:
			if len(r.Brokers) != 1 {
				t.Errorf("Metadata v%d: %d brokers, want 1", k.version, len(r.Brokers))
			}
		}
	}
}

// TestE2EApiVersionsAboveMax: an ApiVersions request newer than we know
// gets a v0-format UNSUPPORTED_VERSION reply listing at least ApiVersions'
// own range, and the connection stays usable.
func TestE2EApiVersionsAboveMax(t *testing.T) {
	b := startBroker(t)
	rc := dialRaw(t, b.Addr())
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(5)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "sluice-e2e", "1.0"
	rc.send(req)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if _, err := rc.recv(resp); err != nil {
		t.Fatalf("ApiVersions v5: %v (want a v0 UNSUPPORTED_VERSION reply, not a closed connection)", err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("ApiVersions v5: error %d, want UNSUPPORTED_VERSION (35)", resp.ErrorCode)
	}
	found := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.ApiVersions.Int16() {
			found = true
			if k.MinVersion != 0 || k.MaxVersion < 3 {
				t.Errorf("ApiVersions range %d-%d, want 0-4 or so", k.MinVersion, k.MaxVersion)
			}
		}
	}
	if !found {
		t.Errorf("UNSUPPORTED_VERSION reply lists no ApiVersions range: %+v", resp.ApiKeys)
	}

	// The connection still works.
	req = kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "sluice-e2e", "1.0"
	rc.send(req)
	resp = kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	if _, err := rc.recv(resp); err != nil {
		t.Fatalf("ApiVersions v3 after the v5 one: %v", err)
	}
	if resp.ErrorCode != 0 {
		t.Errorf("ApiVersions v3: error %d", resp.ErrorCode)
	}
	advertised := map[int16][2]int16{}
	for _, k := range resp.ApiKeys {
		advertised[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	// The ranges issue 4 promises (docs/broker.md, wire compatibility, explains the minimums).
	for key, want := range map[kmsg.Key][2]int16{
		kmsg.ApiVersions: {0, 4}, kmsg.Metadata: {0, 12}, kmsg.Produce: {0, 12}, kmsg.Fetch: {4, 12},
		kmsg.ListOffsets: {0, 8}, kmsg.CreateTopics: {0, 7}, kmsg.DeleteTopics: {0, 6},
		kmsg.CreatePartitions: {0, 3}, kmsg.DescribeConfigs: {0, 4}, kmsg.AlterConfigs: {0, 2},
		kmsg.IncrementalAlterConfigs: {0, 1}, kmsg.DeleteRecords: {0, 2}, kmsg.DescribeCluster: {0, 1},
		kmsg.InitProducerID: {0, 5}, kmsg.OffsetForLeaderEpoch: {2, 4}, kmsg.DescribeProducers: {0, 0},
	} {
		if got, ok := advertised[key.Int16()]; !ok || got != want {
			t.Errorf("%s advertised %v (present %v), want %v", key.Name(), got, ok, want)
		}
	}
}

// TestE2EProduceOldVersionUnsupported: Produce v0-2 (old message formats)
// are in the advertised range for librdkafka's sake but answered with
// UNSUPPORTED_VERSION per partition.
func TestE2EProduceOldVersionUnsupported(t *testing.T) {
	b := startBroker(t)
	createTopic(t, newAdmin(t, b.Addr()), "old", 1, nil)
	rc := dialRaw(t, b.Addr())
	req := produceRequest("old", 0, -1, buildBatch(-1, -1, -1, "v"))
	req.SetVersion(2)
	rc.send(req)
	resp := kmsg.NewPtrProduceResponse()
	resp.SetVersion(2)
	if _, err := rc.recv(resp); err != nil {
		t.Fatalf("Produce v2: %v (want an UNSUPPORTED_VERSION answer)", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("Produce v2 response: %+v", resp.Topics)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.UnsupportedVersion.Code {
		t.Errorf("Produce v2: partition error %d, want UNSUPPORTED_VERSION (35)", code)
	}
}

// TestE2EIdempotentRetry drives the idempotent-producer rules by hand: a
// retried batch is answered with its original offsets and stored once, a
// sequence gap is OUT_OF_ORDER_SEQUENCE_NUMBER, and an older epoch is
// fenced once the producer has bumped it.
func TestE2EIdempotentRetry(t *testing.T) {
	b := startBroker(t)
	adm := newAdmin(t, b.Addr())
	const topic = "retry"
	createTopic(t, adm, topic, 1, nil)
	rc := dialRaw(t, b.Addr())

	init := kmsg.NewPtrInitProducerIDRequest()
	init.SetVersion(4)
	init.TransactionTimeoutMillis = 60000
	init.ProducerID, init.ProducerEpoch = -1, -1
	rc.send(init)
	initResp := kmsg.NewPtrInitProducerIDResponse()
	initResp.SetVersion(4)
	if _, err := rc.recv(initResp); err != nil || initResp.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v code %d", err, initResp.ErrorCode)
	}
	pid, epoch := initResp.ProducerID, initResp.ProducerEpoch
	if pid < 0 || epoch < 0 {
		t.Fatalf("InitProducerId gave producer %d epoch %d", pid, epoch)
	}

	produce := func(epoch int16, seq int32, values ...string) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := produceRequest(topic, 0, -1, buildBatch(pid, epoch, seq, values...))
		req.SetVersion(9)
		rc.send(req)
		resp := kmsg.NewPtrProduceResponse()
		resp.SetVersion(9)
		if _, err := rc.recv(resp); err != nil {
			t.Fatalf("produce seq %d: %v", seq, err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("produce seq %d: response %+v", seq, resp.Topics)
		}
		return resp.Topics[0].Partitions[0]
	}

	first := produce(epoch, 0, "a", "b", "c")
	if first.ErrorCode != 0 || first.BaseOffset != 0 {
		t.Fatalf("first batch: error %d base offset %d, want 0/0", first.ErrorCode, first.BaseOffset)
	}
	again := produce(epoch, 0, "a", "b", "c")
	if again.ErrorCode != 0 || again.BaseOffset != 0 {
		t.Errorf("retried batch: error %v base offset %d, want no error and the original offset 0",
			kerr.ErrorForCode(again.ErrorCode), again.BaseOffset)
	}
	second := produce(epoch, 3, "d", "e")
	if second.ErrorCode != 0 || second.BaseOffset != 3 {
		t.Errorf("second batch: error %v base offset %d, want 3", kerr.ErrorForCode(second.ErrorCode), second.BaseOffset)
	}
	// The first batch is still among the last five: retrying it again
	// after a newer one is also a duplicate, not an error.
	old := produce(epoch, 0, "a", "b", "c")
	if old.ErrorCode != 0 || old.BaseOffset != 0 {
		t.Errorf("retry of an older cached batch: error %v base offset %d, want original offset 0",
			kerr.ErrorForCode(old.ErrorCode), old.BaseOffset)
	}
	gap := produce(epoch, 9, "x")
	if gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("sequence gap: error %v, want OUT_OF_ORDER_SEQUENCE_NUMBER", kerr.ErrorForCode(gap.ErrorCode))
	}
	if end := endOffset(t, adm, topic); end != 5 {
		t.Errorf("end offset %d after 5 distinct records and retries, want 5", end)
	}
	got := consumeN(t, b.Addr(), topic, 5)
	for i, want := range []string{"a", "b", "c", "d", "e"} {
		if string(got[i].Value) != want || got[i].Offset != int64(i) {
			t.Errorf("record %d: offset %d %q, want %q", i, got[i].Offset, got[i].Value, want)
		}
	}

	// KIP-360: the producer bumps its own epoch; the old epoch is fenced.
	init = kmsg.NewPtrInitProducerIDRequest()
	init.SetVersion(4)
	init.TransactionTimeoutMillis = 60000
	init.ProducerID, init.ProducerEpoch = pid, epoch
	rc.send(init)
	initResp = kmsg.NewPtrInitProducerIDResponse()
	initResp.SetVersion(4)
	if _, err := rc.recv(initResp); err != nil {
		t.Fatalf("InitProducerId bump: %v", err)
	}
	if initResp.ErrorCode != 0 || initResp.ProducerID != pid || initResp.ProducerEpoch <= epoch {
		t.Logf("epoch bump not granted (error %v, producer %d epoch %d); skipping the fencing check",
			kerr.ErrorForCode(initResp.ErrorCode), initResp.ProducerID, initResp.ProducerEpoch)
		return
	}
	newEpoch := initResp.ProducerEpoch
	if r := produce(newEpoch, 0, "f"); r.ErrorCode != 0 || r.BaseOffset != 5 {
		t.Errorf("first batch of the new epoch: error %v base offset %d, want 5", kerr.ErrorForCode(r.ErrorCode), r.BaseOffset)
	}
	fenced := produce(epoch, 5, "stale")
	if fenced.ErrorCode != kerr.InvalidProducerEpoch.Code && fenced.ErrorCode != kerr.ProducerFenced.Code {
		t.Errorf("batch with the old epoch: error %v, want INVALID_PRODUCER_EPOCH", kerr.ErrorForCode(fenced.ErrorCode))
	}
}

func produceRequest(topic string, partition int32, acks int16, batch []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// buildBatch encodes an uncompressed record batch v2 of values, with the
// producer id, epoch and first sequence given (-1s for a plain producer).
func buildBatch(producerID int64, epoch int16, firstSequence int32, values ...string) []byte {
	now := time.Now().UnixMilli()
	var records []byte
	for i, v := range values {
		rec := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		body := rec.AppendTo(nil)[1:] // drop the 1-byte varint Length of 0
		records = binary.AppendVarint(records, int64(len(body)))
		records = append(records, body...)
	}
	batch := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  now,
		MaxTimestamp:    now,
		ProducerID:      producerID,
		ProducerEpoch:   epoch,
		FirstSequence:   firstSequence,
		NumRecords:      int32(len(values)),
		Records:         records,
	}
	raw := batch.AppendTo(nil)
	// Length counts everything after itself; the CRC covers attributes
	// (byte 21) to the end.
	binary.BigEndian.PutUint32(raw[8:12], uint32(len(raw)-12))
	binary.BigEndian.PutUint32(raw[17:21], crc32.Checksum(raw[21:], crc32c))
	return raw
}
