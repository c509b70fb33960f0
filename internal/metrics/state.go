package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
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

// stateCollector turns a State into metrics at scrape time.
type stateCollector struct {
	state State

	connections, activeController, offline, globalPartitions, globalTopics *prometheus.Desc
	raftEpoch, raftLeader, raftHighWatermark                               *prometheus.Desc
	partitionCount, leaderCount, underReplicated, underMinISR              *prometheus.Desc
	partitionUnderReplicated, logSize                                      *prometheus.Desc
	groupOffset, groupLag                                                  *prometheus.Desc
}

func newStateCollector(s State) *stateCollector {
	gauge := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	tp := []string{"topic", "partition"}
	group := []string{"consumergroup", "topic", "partition"}
	return &stateCollector{
		state:       s,
		connections: gauge("kafka_server_socket_server_metrics_connection_count", "Open client connections.", "listener"),
		activeController: gauge("kafka_controller_kafkacontroller_activecontrollercount",
			"1 on the active controller (the metadata quorum's leader), else 0."),
		offline: gauge("kafka_controller_kafkacontroller_offlinepartitionscount",
			"Partitions without a leader; reported by the active controller only."),
		globalPartitions: gauge("kafka_controller_kafkacontroller_globalpartitioncount",
			"Partitions in the cluster; reported by the active controller only."),
		globalTopics: gauge("kafka_controller_kafkacontroller_globaltopiccount",
			"Topics in the cluster; reported by the active controller only."),
		raftEpoch:         gauge("kafka_server_raft_metrics_current_epoch", "The metadata quorum's Raft term as this node knows it."),
		raftLeader:        gauge("kafka_server_raft_metrics_current_leader", "The node id of the metadata quorum's leader; -1 when unknown."),
		raftHighWatermark: gauge("kafka_server_raft_metrics_high_watermark", "The metadata log's commit index (its high watermark) as this node knows it."),
		partitionCount:    gauge("kafka_server_replicamanager_partitioncount", "Partitions this node hosts a replica of."),
		leaderCount:       gauge("kafka_server_replicamanager_leadercount", "Partitions this node leads."),
		underReplicated: gauge("kafka_server_replicamanager_underreplicatedpartitions",
			"Partitions this node leads whose ISR is smaller than their replica set."),
		underMinISR: gauge("kafka_server_replicamanager_underminisrpartitioncount",
			"Partitions this node leads whose ISR is smaller than min.insync.replicas (acks=all produces fail)."),
		partitionUnderReplicated: gauge("kafka_cluster_partition_underreplicated",
			"1 when the partition, led by this node, has an ISR smaller than its replica set.", tp...),
		// One series per partition per metric is what a scrape costs, so
		// only the size and, for leaders, under-replication are per
		// partition; offsets are in the Kafka APIs and the console.
		logSize:     gauge("kafka_log_log_size", "Bytes of the partition's log segments on this node.", tp...),
		groupOffset: gauge("kafka_consumergroup_current_offset", "The committed offset of a consumer group coordinated by this node.", group...),
		groupLag: gauge("kafka_consumergroup_lag",
			"The partition's high watermark minus the group's committed offset; only for partitions this node hosts.", group...),
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.connections, c.activeController, c.offline, c.globalPartitions, c.globalTopics,
		c.raftEpoch, c.raftLeader, c.raftHighWatermark, c.partitionCount, c.leaderCount, c.underReplicated, c.underMinISR,
		c.partitionUnderReplicated, c.logSize, c.groupOffset, c.groupLag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	n := c.state.Node()
	gauge(c.connections, float64(n.Connections), "PLAINTEXT")
	gauge(c.activeController, boolValue(n.ActiveController))
	if n.ActiveController {
		gauge(c.offline, float64(n.OfflinePartitions))
		gauge(c.globalPartitions, float64(n.GlobalPartitions))
		gauge(c.globalTopics, float64(n.GlobalTopics))
	} else {
		gauge(c.offline, 0)
		gauge(c.globalPartitions, 0)
		gauge(c.globalTopics, 0)
	}
	if n.RaftKnown {
		gauge(c.raftEpoch, float64(n.RaftEpoch))
		gauge(c.raftLeader, float64(n.RaftLeader))
		gauge(c.raftHighWatermark, float64(n.RaftHighWatermark))
	}
	var hosted, leading, underReplicated, underMinISR int
	c.state.Partitions(func(p *PartitionSample) {
		hosted++
		partition := strconv.Itoa(int(p.Partition))
		gauge(c.logSize, float64(p.SizeBytes), p.Topic, partition)
		if !p.Leader {
			return
		}
		leading++
		gauge(c.partitionUnderReplicated, boolValue(p.UnderReplicated), p.Topic, partition)
		if p.UnderReplicated {
			underReplicated++
		}
		if p.UnderMinISR {
			underMinISR++
		}
	})
	gauge(c.partitionCount, float64(hosted))
	gauge(c.leaderCount, float64(leading))
	gauge(c.underReplicated, float64(underReplicated))
	gauge(c.underMinISR, float64(underMinISR))
	c.state.GroupOffsets(func(o *GroupOffsetSample) {
		partition := strconv.Itoa(int(o.Partition))
		gauge(c.groupOffset, float64(o.Offset), o.Group, o.Topic, partition)
		if o.Lag >= 0 {
			gauge(c.groupLag, float64(o.Lag), o.Group, o.Topic, partition)
		}
	})
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
