package metrics

import (
	"strconv"
	"sync"
	"unicode/utf8"
)

// State is what a scrape reads from the running node. Each method is
// called once per scrape and may walk every partition or group; none is
// called on the request path.
type State interface {
	// Node is the node-wide state.
	Node() NodeSample
	// Partitions visits every partition this node hosts a replica of.
	Partitions(visit func(*PartitionSample))
	// GroupOffsets visits the committed offsets of the consumer groups
	// this node coordinates.
	GroupOffsets(visit func(*GroupOffsetSample))
}

// NodeSample is the node-wide state at a scrape.
type NodeSample struct {
	Connections int // open client connections
	// ActiveController: this node is the active controller (the Raft
	// leader); the cluster-wide counts below are exported only there, as
	// Kafka's controller metrics are, so a sum over nodes is the cluster's.
	ActiveController  bool
	OfflinePartitions int // partitions without a leader
	GlobalPartitions  int
	GlobalTopics      int
	// Raft: the metadata quorum as this node sees it; RaftKnown is false
	// when the driver did not answer in time.
	RaftKnown         bool
	RaftEpoch         int64 // the Raft term
	RaftLeader        int64 // -1 when unknown
	RaftHighWatermark int64 // the commit index
}

// PartitionSample is one hosted partition.
type PartitionSample struct {
	Topic     string
	Partition int32
	// Leader: this node leads it; UnderReplicated and UnderMinISR are
	// meaningful only then, as in Kafka.
	Leader          bool
	UnderReplicated bool // ISR smaller than the replica set
	UnderMinISR     bool // ISR smaller than min.insync.replicas
	SizeBytes       int64
}

// GroupOffsetSample is one committed offset of a consumer group.
type GroupOffsetSample struct {
	Group     string
	Topic     string
	Partition int32
	Offset    int64
	// Lag is the partition's high watermark minus Offset; -1 when this
	// node hosts no replica of the partition and so cannot tell.
	Lag int64
}

// stateWriter renders a State in the Prometheus text format at scrape
// time, by hand rather than through client_golang's collectors: those
// build a labelled metric object per series and sort them all, which for
// 10,000 partitions cost 50-100 ms and 16 MB of garbage per scrape. Here a
// scrape walks the partitions once and appends their lines to buffers
// reused across scrapes, so its cost is the bytes it writes.
type stateWriter struct {
	state   State
	scratch sync.Pool // *stateScratch
}

// stateScratch holds one family's lines each while the walk interleaves
// them: the text format wants a family's series together.
type stateScratch struct {
	logSize, underReplicated, groupOffset, groupLag []byte
}

// family is a metric family's name and help text; every state metric is a
// gauge.
type family struct{ name, help string }

var (
	famConnections      = family{"kafka_server_socket_server_metrics_connection_count", "Open client connections."}
	famActiveController = family{"kafka_controller_kafkacontroller_activecontrollercount",
		"1 on the active controller (the metadata quorum's leader), else 0."}
	famOffline = family{"kafka_controller_kafkacontroller_offlinepartitionscount",
		"Partitions without a leader; reported by the active controller only."}
	famGlobalPartitions = family{"kafka_controller_kafkacontroller_globalpartitioncount",
		"Partitions in the cluster; reported by the active controller only."}
	famGlobalTopics = family{"kafka_controller_kafkacontroller_globaltopiccount",
		"Topics in the cluster; reported by the active controller only."}
	famRaftEpoch         = family{"kafka_server_raft_metrics_current_epoch", "The metadata quorum's Raft term as this node knows it."}
	famRaftLeader        = family{"kafka_server_raft_metrics_current_leader", "The node id of the metadata quorum's leader; -1 when unknown."}
	famRaftHighWatermark = family{"kafka_server_raft_metrics_high_watermark", "The metadata log's commit index (its high watermark) as this node knows it."}
	famPartitionCount    = family{"kafka_server_replicamanager_partitioncount", "Partitions this node hosts a replica of."}
	famLeaderCount       = family{"kafka_server_replicamanager_leadercount", "Partitions this node leads."}
	famUnderReplicated   = family{"kafka_server_replicamanager_underreplicatedpartitions",
		"Partitions this node leads whose ISR is smaller than their replica set."}
	famUnderMinISR = family{"kafka_server_replicamanager_underminisrpartitioncount",
		"Partitions this node leads whose ISR is smaller than min.insync.replicas (acks=all produces fail)."}
	// One series per partition per metric is what a scrape costs, so only
	// the size and, for leaders, under-replication are per partition;
	// offsets are in the Kafka APIs and the console.
	famPartitionUnderReplicated = family{"kafka_cluster_partition_underreplicated",
		"1 when the partition, led by this node, has an ISR smaller than its replica set."}
	famLogSize     = family{"kafka_log_log_size", "Bytes of the partition's log segments on this node."}
	famGroupOffset = family{"kafka_consumergroup_current_offset", "The committed offset of a consumer group coordinated by this node."}
	famGroupLag    = family{"kafka_consumergroup_lag",
		"The partition's high watermark minus the group's committed offset; only for partitions this node hosts."}
)

// stateFamilies are the names the writer owns, so the registry never
// renders one of them too.
var stateFamilies = []family{famConnections, famActiveController, famOffline, famGlobalPartitions, famGlobalTopics,
	famRaftEpoch, famRaftLeader, famRaftHighWatermark, famPartitionCount, famLeaderCount, famUnderReplicated,
	famUnderMinISR, famPartitionUnderReplicated, famLogSize, famGroupOffset, famGroupLag}

func newStateWriter(s State) *stateWriter {
	return &stateWriter{state: s, scratch: sync.Pool{New: func() any { return &stateScratch{} }}}
}

// appendTo appends the state's metrics to b.
func (w *stateWriter) appendTo(b []byte) []byte {
	n := w.state.Node()
	b = appendHeader(b, famConnections)
	b = appendSample(b, famConnections.name, float64(n.Connections), "listener", "PLAINTEXT")
	b = appendGauge(b, famActiveController, boolValue(n.ActiveController))
	var offline, partitions, topics float64
	if n.ActiveController {
		offline, partitions, topics = float64(n.OfflinePartitions), float64(n.GlobalPartitions), float64(n.GlobalTopics)
	}
	b = appendGauge(b, famOffline, offline)
	b = appendGauge(b, famGlobalPartitions, partitions)
	b = appendGauge(b, famGlobalTopics, topics)
	if n.RaftKnown {
		b = appendGauge(b, famRaftEpoch, float64(n.RaftEpoch))
		b = appendGauge(b, famRaftLeader, float64(n.RaftLeader))
		b = appendGauge(b, famRaftHighWatermark, float64(n.RaftHighWatermark))
	}
	sc := w.scratch.Get().(*stateScratch)
	defer w.scratch.Put(sc)
	sc.logSize, sc.underReplicated = sc.logSize[:0], sc.underReplicated[:0]
	sc.groupOffset, sc.groupLag = sc.groupOffset[:0], sc.groupLag[:0]
	var hosted, leading, underReplicated, underMinISR int
	w.state.Partitions(func(p *PartitionSample) {
		hosted++
		sc.logSize = appendPartitionSample(sc.logSize, famLogSize.name, float64(p.SizeBytes), "", p.Topic, p.Partition)
		if !p.Leader {
			return
		}
		leading++
		sc.underReplicated = appendPartitionSample(sc.underReplicated, famPartitionUnderReplicated.name,
			boolValue(p.UnderReplicated), "", p.Topic, p.Partition)
		if p.UnderReplicated {
			underReplicated++
		}
		if p.UnderMinISR {
			underMinISR++
		}
	})
	b = appendGauge(b, famPartitionCount, float64(hosted))
	b = appendGauge(b, famLeaderCount, float64(leading))
	b = appendGauge(b, famUnderReplicated, float64(underReplicated))
	b = appendGauge(b, famUnderMinISR, float64(underMinISR))
	b = appendFamily(b, famPartitionUnderReplicated, sc.underReplicated)
	b = appendFamily(b, famLogSize, sc.logSize)
	w.state.GroupOffsets(func(o *GroupOffsetSample) {
		sc.groupOffset = appendPartitionSample(sc.groupOffset, famGroupOffset.name, float64(o.Offset), o.Group, o.Topic, o.Partition)
		if o.Lag >= 0 {
			sc.groupLag = appendPartitionSample(sc.groupLag, famGroupLag.name, float64(o.Lag), o.Group, o.Topic, o.Partition)
		}
	})
	b = appendFamily(b, famGroupOffset, sc.groupOffset)
	return appendFamily(b, famGroupLag, sc.groupLag)
}

func appendHeader(b []byte, f family) []byte {
	b = append(b, "# HELP "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = appendEscaped(b, f.help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, f.name...)
	return append(b, " gauge\n"...)
}

func appendGauge(b []byte, f family, v float64) []byte {
	return appendSample(appendHeader(b, f), f.name, v, "", "")
}

// appendFamily writes a family's header and its lines; a family with no
// series is left out, as client_golang leaves it out.
func appendFamily(b []byte, f family, lines []byte) []byte {
	if len(lines) == 0 {
		return b
	}
	return append(appendHeader(b, f), lines...)
}

func appendSample(b []byte, name string, v float64, label, value string) []byte {
	b = append(b, name...)
	if label != "" {
		b = append(b, '{')
		b = append(b, label...)
		b = append(b, `="`...)
		b = appendEscaped(b, value, true)
		b = append(b, `"}`...)
	}
	b = append(b, ' ')
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, '\n')
}

// appendPartitionSample writes one series labelled with a partition (and
// a consumer group unless group is empty), labels in name order as
// client_golang writes them.
func appendPartitionSample(b []byte, name string, v float64, group, topic string, partition int32) []byte {
	b = append(b, name...)
	b = append(b, '{')
	if group != "" {
		b = append(b, `consumergroup="`...)
		b = appendEscaped(b, group, true)
		b = append(b, `",`...)
	}
	b = append(b, `partition="`...)
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, `",topic="`...)
	b = appendEscaped(b, topic, true)
	b = append(b, `"} `...)
	b = strconv.AppendFloat(b, v, 'g', -1, 64)
	return append(b, '\n')
}

// appendEscaped escapes as the text format wants: backslash and newline
// everywhere, double quotes inside label values. Topic names cannot hold
// any of them, but group ids can. A group id is whatever bytes a client
// sent, and a label value that is not UTF-8 makes Prometheus reject the
// whole scrape, so each invalid byte becomes U+FFFD, as client_golang's
// own label values are required to be valid.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size - 1
		case c == '\\':
			b = append(b, `\\`...)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '"' && quote:
			b = append(b, `\"`...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
