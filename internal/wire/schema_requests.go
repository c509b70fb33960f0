package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// Request schemas, in key order, for the versions Sluice serves now or
// next. Field names are Kafka's (snake_case as in the protocol guide);
// version ranges follow Kafka's *Request.json. Fields past a message's
// maxVersion are kept where they are cheap to state, so widening a range
// is a one-line change once the new versions are checked against kmsg.

// Produce is advertised from v0 although v0-2 (the old message formats)
// are answered UNSUPPORTED_VERSION: librdkafka stops compressing when the
// range lacks v0. v3 brings transactional_id (KIP-98) and record batch v2,
// the only format stored. It is capped at v12: v13 names topics by id
// (KIP-516), which the broker does not serve yet. The records are checked
// only for their length; kmsg aliases them, and the log validates them.
var produceRequest = message{key: 0, name: "Produce", minVersion: 0, maxVersion: 12, flexibleFrom: 9, fields: []field{
	nstr("transactional_id").from(3),
	i16("acks"),
	i32("timeout_ms"),
	array[kmsg.ProduceRequestTopic]("topic_data",
		str("name").versions(0, 12),
		uuid("topic_id").from(13),
		array[kmsg.ProduceRequestTopicPartition]("partition_data",
			i32("index"),
			records("records"),
		),
	),
}}

// Fetch starts at v4, the first version with isolation_level and the last
// stable offset (KIP-98); older versions would need batches down-converted
// to the old message formats, and records are never re-encoded. On the
// way: max_bytes v3 (KIP-74), log_start_offset v5 (KIP-107), sessions and
// forgotten topics v7 (KIP-227), current_leader_epoch v9 (KIP-320),
// rack_id v11 (KIP-392), last_fetched_epoch v12 (KIP-595). From v15 the
// replica id moves into the tagged replica_state with the broker epoch
// (KIP-903), so a follower restarted with a new epoch cannot join the ISR
// on the strength of an old fetch.
var fetchRequest = message{key: 1, name: "Fetch", minVersion: 4, maxVersion: 12, flexibleFrom: 12, fields: []field{
	tagged(0, nstr("cluster_id").from(12)),
	i32("replica_id").versions(0, 14),
	tagged(1, structField("replica_state",
		i32("replica_id"),
		i64("replica_epoch"),
	).from(15)),
	i32("max_wait_ms"),
	i32("min_bytes"),
	i32("max_bytes").from(3),
	i8("isolation_level").from(4),
	i32("session_id").from(7),
	i32("session_epoch").from(7),
	array[kmsg.FetchRequestTopic]("topics",
		str("topic").versions(0, 12),
		uuid("topic_id").from(13),
		array[kmsg.FetchRequestTopicPartition]("partitions",
			i32("partition"),
			i32("current_leader_epoch").from(9),
			i64("fetch_offset"),
			i32("last_fetched_epoch").from(12),
			i64("log_start_offset").from(5),
			i32("partition_max_bytes"),
			tagged(0, uuid("replica_directory_id").from(17)),
			tagged(1, i64("high_watermark").from(18)),
		),
	),
	array[kmsg.FetchRequestForgottenTopic]("forgotten_topics_data",
		str("topic").versions(7, 12),
		uuid("topic_id").from(13),
		primArray("partitions", kindInt32),
	).from(7),
	str("rack_id").from(11),
}}

// ListOffsets v0 could ask for several offsets (max_num_offsets); later
// versions answer one per partition. isolation_level arrives in v2
// (KIP-98) and current_leader_epoch in v4 (KIP-320): a client whose view
// of leadership is stale is refused (FENCED_LEADER_EPOCH) instead of being
// answered from a log that is no longer the leader's.
var listOffsetsRequest = message{key: 2, name: "ListOffsets", minVersion: 0, maxVersion: 8, flexibleFrom: 6, fields: []field{
	i32("replica_id"),
	i8("isolation_level").from(2),
	array[kmsg.ListOffsetsRequestTopic]("topics",
		str("name"),
		array[kmsg.ListOffsetsRequestTopicPartition]("partitions",
			i32("partition_index"),
			i32("current_leader_epoch").from(4),
			i64("timestamp"),
			i32("max_num_offsets").versions(0, 0),
		),
	),
	i32("timeout_ms").from(10),
}}

// Metadata: Kafka's edge case matters here. In v0 an empty topic list
// means every topic; from v1 null means every topic and empty means none.
// The topic id (v10, KIP-516) allows a lookup by id, with the name null.
// Cluster authorized operations left Metadata in v11 for DescribeCluster
// (KIP-700).
var metadataRequest = message{key: 3, name: "Metadata", minVersion: 0, maxVersion: 12, flexibleFrom: 9, fields: []field{
	array[kmsg.MetadataRequestTopic]("topics",
		uuid("topic_id").from(10),
		// kmsg boxes the name (*string) at every version, so it is
		// charged as a nullable string even where the wire forbids null.
		str("name").nullable(10),
	).nullable(1),
	boolean("allow_auto_topic_creation").from(4),
	boolean("include_cluster_authorized_operations").versions(8, 10),
	boolean("include_topic_authorized_operations").from(8),
}}

// OffsetCommit: generation -1 with an empty member id is a simple commit
// from outside any group, which the CLI's reset-offsets uses. The retention
// time only exists in v2-4; from v5 the broker's offsets.retention.minutes
// decides (KIP-211). group_instance_id is static membership (KIP-345), and
// committed_leader_epoch (v6, KIP-320) lets a consumer detect truncation
// after a restart.
var offsetCommitRequest = message{key: 8, name: "OffsetCommit", minVersion: 0, maxVersion: 9, flexibleFrom: 8, fields: []field{
	str("group_id"),
	i32("generation_id_or_member_epoch").from(1),
	str("member_id").from(1),
	nstr("group_instance_id").from(7),
	i64("retention_time_ms").versions(2, 4),
	array[kmsg.OffsetCommitRequestTopic]("topics",
		str("name").versions(0, 9),
		uuid("topic_id").from(10),
		array[kmsg.OffsetCommitRequestTopicPartition]("partitions",
			i32("partition_index"),
			i64("committed_offset"),
			i64("commit_timestamp").versions(1, 1),
			i32("committed_leader_epoch").from(6),
			nstr("committed_metadata"),
		),
	),
}}

// OffsetFetch: null topics (v2+) asks for every partition the group has
// committed. From v8 one request carries several groups (KIP-709), so the
// single-group fields stop at v7. require_stable (v7, KIP-447) makes the
// broker hold back offsets of pending transactional commits.
var offsetFetchRequest = message{key: 9, name: "OffsetFetch", minVersion: 0, maxVersion: 9, flexibleFrom: 6, fields: []field{
	str("group_id").versions(0, 7),
	array[kmsg.OffsetFetchRequestTopic]("topics",
		str("name"),
		primArray("partition_indexes", kindInt32),
	).versions(0, 7).nullable(2),
	array[kmsg.OffsetFetchRequestGroup]("groups",
		str("group_id"),
		nstr("member_id").from(9),
		i32("member_epoch").from(9),
		array[kmsg.OffsetFetchRequestGroupTopic]("topics",
			str("name").versions(8, 9),
			uuid("topic_id").from(10),
			primArray("partition_indexes", kindInt32),
		).nullable(8),
	).from(8),
	boolean("require_stable").from(7),
}}

// FindCoordinator: key_type (v1) tells group from transaction coordinators
// (KIP-98); from v4 several keys travel in one request (KIP-699) and the
// single key field is gone.
var findCoordinatorRequest = message{key: 10, name: "FindCoordinator", minVersion: 0, maxVersion: 6, flexibleFrom: 3, fields: []field{
	str("key").versions(0, 3),
	i8("key_type").from(1),
	primArray("coordinator_keys", kindString).from(4),
}}

// JoinGroup: the rebalance timeout got its own field in v1 (KIP-62), so a
// slow poll loop no longer looks like a dead member; group_instance_id is
// static membership (v5, KIP-345) and reason is logged by the broker (v8,
// KIP-800).
var joinGroupRequest = message{key: 11, name: "JoinGroup", minVersion: 0, maxVersion: 9, flexibleFrom: 6, fields: []field{
	str("group_id"),
	i32("session_timeout_ms"),
	i32("rebalance_timeout_ms").from(1),
	str("member_id"),
	nstr("group_instance_id").from(5),
	str("protocol_type"),
	array[kmsg.JoinGroupRequestProtocol]("protocols",
		str("name"),
		byts("metadata"),
	),
	nstr("reason").from(8),
}}

// Heartbeat: group_instance_id (v3) lets a static member (KIP-345)
// heartbeat under its instance id after a restart.
var heartbeatRequest = message{key: 12, name: "Heartbeat", minVersion: 0, maxVersion: 4, flexibleFrom: 4, fields: []field{
	str("group_id"),
	i32("generation_id"),
	str("member_id"),
	nstr("group_instance_id").from(3),
}}

// LeaveGroup: from v3 one request removes several members, by member or
// instance id, which is how an operator removes static members (KIP-345).
var leaveGroupRequest = message{key: 13, name: "LeaveGroup", minVersion: 0, maxVersion: 5, flexibleFrom: 4, fields: []field{
	str("group_id"),
	str("member_id").versions(0, 2),
	array[kmsg.LeaveGroupRequestMember]("members",
		str("member_id"),
		nstr("group_instance_id"),
		nstr("reason").from(5),
	).from(3),
}}

// SyncGroup: v5 echoes the protocol type and name (KIP-559), so a client
// can check that the assignment it gets is for the protocol it joined with.
var syncGroupRequest = message{key: 14, name: "SyncGroup", minVersion: 0, maxVersion: 5, flexibleFrom: 4, fields: []field{
	str("group_id"),
	i32("generation_id"),
	str("member_id"),
	nstr("group_instance_id").from(3),
	nstr("protocol_type").from(5),
	nstr("protocol_name").from(5),
	array[kmsg.SyncGroupRequestGroupAssignment]("assignments",
		str("member_id"),
		byts("assignment"),
	),
}}

// DescribeGroups: include_authorized_operations (v3, KIP-430) asks which
// operations the client may perform on each group; with no ACLs yet the
// answer is all of them.
var describeGroupsRequest = message{key: 15, name: "DescribeGroups", minVersion: 0, maxVersion: 5, flexibleFrom: 5, fields: []field{
	primArray("groups", kindString),
	boolean("include_authorized_operations").from(3),
}}

// ListGroups: the state filter (v4, KIP-518) is what `kafka-consumer-groups
// --list --state` sends; the type filter (v5, KIP-848) tells classic
// groups from those of the new consumer protocol.
var listGroupsRequest = message{key: 16, name: "ListGroups", minVersion: 0, maxVersion: 5, flexibleFrom: 3, fields: []field{
	primArray("states_filter", kindString).from(4),
	primArray("types_filter", kindString).from(5),
}}

// ApiVersions must be answered at any version: one above the range gets a
// v0-format UNSUPPORTED_VERSION body before this schema is consulted
// (api.Server.Serve), so the schema only sees versions we serve. The
// client software fields (v3, KIP-511) are free text for logs and metrics.
var apiVersionsRequest = message{key: 18, name: "ApiVersions", minVersion: 0, maxVersion: 4, flexibleFrom: 3, fields: []field{
	str("client_software_name").from(3),
	str("client_software_version").from(3),
}}

// CreateTopics: -1 partitions or replication factor means the broker's
// default (KIP-464, v4), which is what `sluice topic create` without -p/-r
// sends. Arriving at any broker, the request is forwarded to the active
// controller (KIP-590) rather than answered NOT_CONTROLLER.
var createTopicsRequest = message{key: 19, name: "CreateTopics", minVersion: 0, maxVersion: 7, flexibleFrom: 5, fields: []field{
	array[kmsg.CreateTopicsRequestTopic]("topics",
		str("name"),
		i32("num_partitions"),
		i16("replication_factor"),
		array[kmsg.CreateTopicsRequestTopicReplicaAssignment]("assignments",
			i32("partition_index"),
			primArray("broker_ids", kindInt32),
		),
		array[kmsg.CreateTopicsRequestTopicConfig]("configs",
			str("name"),
			nstr("value"),
		),
	),
	i32("timeout_ms"),
	boolean("validate_only").from(1),
}}

// DeleteTopics: from v6 topics are named by name or by id (KIP-516), so
// the plain name list stops at v5.
var deleteTopicsRequest = message{key: 20, name: "DeleteTopics", minVersion: 0, maxVersion: 6, flexibleFrom: 4, fields: []field{
	primArray("topic_names", kindString).versions(0, 5),
	array[kmsg.DeleteTopicsRequestTopic]("topics",
		nstr("name"),
		uuid("topic_id"),
	).from(6),
	i32("timeout_ms"),
}}

// DeleteRecords (KIP-107) moves a partition's log start offset up; it is
// `sluice topic trim`.
var deleteRecordsRequest = message{key: 21, name: "DeleteRecords", minVersion: 0, maxVersion: 2, flexibleFrom: 2, fields: []field{
	array[kmsg.DeleteRecordsRequestTopic]("topics",
		str("name"),
		array[kmsg.DeleteRecordsRequestTopicPartition]("partitions",
			i32("partition_index"),
			i64("offset"),
		),
	),
	i32("timeout_ms"),
}}

// InitProducerId: v3 carries the current producer id and epoch so a
// producer can bump its epoch after a timeout instead of starting over
// (KIP-360).
var initProducerIDRequest = message{key: 22, name: "InitProducerId", minVersion: 0, maxVersion: 5, flexibleFrom: 2, fields: []field{
	nstr("transactional_id"),
	i32("transaction_timeout_ms"),
	i64("producer_id").from(3),
	i16("producer_epoch").from(3),
}}

// AddPartitionsToTxn: v0-3 is a producer's one transaction; v4+ (KIP-890)
// is the brokers' batched form, where verify_only asks the coordinator
// whether partitions are in an ongoing transaction.
var addPartitionsToTxnRequest = message{key: 24, name: "AddPartitionsToTxn", minVersion: 0, maxVersion: 5, flexibleFrom: 3, fields: []field{
	array[kmsg.AddPartitionsToTxnRequestTransaction]("transactions",
		str("transactional_id"),
		i64("producer_id"),
		i16("producer_epoch"),
		boolean("verify_only"),
		array[kmsg.AddPartitionsToTxnRequestTransactionTopic]("topics",
			str("name"),
			primArray("partitions", kindInt32),
		),
	).from(4),
	str("v3_and_below_transactional_id").versions(0, 3),
	i64("v3_and_below_producer_id").versions(0, 3),
	i16("v3_and_below_producer_epoch").versions(0, 3),
	array[kmsg.AddPartitionsToTxnRequestTopic]("v3_and_below_topics",
		str("name"),
		primArray("partitions", kindInt32),
	).versions(0, 3),
}}

// AddOffsetsToTxn adds a group's __consumer_offsets partition to a
// transaction.
var addOffsetsToTxnRequest = message{key: 25, name: "AddOffsetsToTxn", minVersion: 0, maxVersion: 4, flexibleFrom: 3, fields: []field{
	str("transactional_id"),
	i64("producer_id"),
	i16("producer_epoch"),
	str("group_id"),
}}

// EndTxn commits or aborts a transaction; v5 (KIP-890 part 2) is not
// served.
var endTxnRequest = message{key: 26, name: "EndTxn", minVersion: 0, maxVersion: 4, flexibleFrom: 3, fields: []field{
	str("transactional_id"),
	i64("producer_id"),
	i16("producer_epoch"),
	boolean("committed"),
}}

// OffsetForLeaderEpoch is how a follower finds where its log diverges from
// the leader's, rather than guessing from the high watermark (KIP-101).
// current_leader_epoch (v2, KIP-320) fences a stale leader; replica_id
// (v3) tells a consumer's request from a follower's.
var offsetForLeaderEpochRequest = message{key: 23, name: "OffsetForLeaderEpoch", minVersion: 0, maxVersion: 4, flexibleFrom: 4, fields: []field{
	i32("replica_id").from(3),
	array[kmsg.OffsetForLeaderEpochRequestTopic]("topics",
		str("topic"),
		array[kmsg.OffsetForLeaderEpochRequestTopicPartition]("partitions",
			i32("partition"),
			i32("current_leader_epoch").from(2),
			i32("leader_epoch"),
		),
	),
}}

// DescribeConfigs: null configuration_keys means every key. Synonyms (v1,
// KIP-226) give each value's source, which `topic describe --all-configs`
// prints; documentation is v3 (KIP-569).
var describeConfigsRequest = message{key: 32, name: "DescribeConfigs", minVersion: 0, maxVersion: 4, flexibleFrom: 4, fields: []field{
	array[kmsg.DescribeConfigsRequestResource]("resources",
		i8("resource_type"),
		str("resource_name"),
		primArray("configuration_keys", kindString).nullable(0),
	),
	boolean("include_synonyms").from(1),
	boolean("include_documentation").from(3),
}}

// AlterConfigs replaces a resource's whole set of overrides (keys left out
// are removed); IncrementalAlterConfigs is the one tools use today.
var alterConfigsRequest = message{key: 33, name: "AlterConfigs", minVersion: 0, maxVersion: 2, flexibleFrom: 2, fields: []field{
	array[kmsg.AlterConfigsRequestResource]("resources",
		i8("resource_type"),
		str("resource_name"),
		array[kmsg.AlterConfigsRequestResourceConfig]("configs",
			str("name"),
			nstr("value"),
		),
	),
	boolean("validate_only"),
}}

// CreatePartitions (KIP-195): count is the new total, never an increment,
// which is why the CLI's --add is computed from a describe first. Null
// assignments let the controller place the new replicas.
var createPartitionsRequest = message{key: 37, name: "CreatePartitions", minVersion: 0, maxVersion: 3, flexibleFrom: 2, fields: []field{
	array[kmsg.CreatePartitionsRequestTopic]("topics",
		str("name"),
		i32("count"),
		array[kmsg.CreatePartitionsRequestTopicAssignment]("assignments",
			primArray("broker_ids", kindInt32),
		).nullable(0),
	),
	i32("timeout_ms"),
	boolean("validate_only"),
}}

// DeleteGroups removes empty groups with their committed offsets.
var deleteGroupsRequest = message{key: 42, name: "DeleteGroups", minVersion: 0, maxVersion: 2, flexibleFrom: 2, fields: []field{
	primArray("groups_names", kindString),
}}

// ElectLeaders: election_type (v1, KIP-460) adds unclean elections to the
// preferred ones; null topic_partitions means every partition.
var electLeadersRequest = message{key: 43, name: "ElectLeaders", minVersion: 0, maxVersion: 2, flexibleFrom: 2, fields: []field{
	i8("election_type").from(1),
	array[kmsg.ElectLeadersRequestTopic]("topic_partitions",
		str("topic"),
		primArray("partitions", kindInt32),
	).nullable(0),
	i32("timeout_ms"),
}}

// IncrementalAlterConfigs (KIP-339) sets, deletes, appends or subtracts one
// key at a time, leaving the other overrides alone.
var incrementalAlterConfigsRequest = message{key: 44, name: "IncrementalAlterConfigs", minVersion: 0, maxVersion: 1, flexibleFrom: 1, fields: []field{
	array[kmsg.IncrementalAlterConfigsRequestResource]("resources",
		i8("resource_type"),
		str("resource_name"),
		array[kmsg.IncrementalAlterConfigsRequestResourceConfig]("configs",
			str("name"),
			i8("config_operation"),
			nstr("value"),
		),
	),
	boolean("validate_only"),
}}

// OffsetDelete (KIP-496) has only v0, which is not flexible: flexibleFrom
// is allVersions.
var offsetDeleteRequest = message{key: 47, name: "OffsetDelete", minVersion: 0, maxVersion: 0, flexibleFrom: allVersions, fields: []field{
	str("group_id"),
	array[kmsg.OffsetDeleteRequestTopic]("topics",
		str("name"),
		array[kmsg.OffsetDeleteRequestTopicPartition]("partitions",
			i32("partition_index"),
		),
	),
}}

// DescribeClientQuotas (KIP-546): filter components on entity types,
// each matching a name exactly (0, with match set), the default entity (1)
// or any named entity (2).
var describeClientQuotasRequest = message{key: 48, name: "DescribeClientQuotas", minVersion: 0, maxVersion: 1, flexibleFrom: 1, fields: []field{
	array[kmsg.DescribeClientQuotasRequestComponent]("components",
		str("entity_type"),
		i8("match_type"),
		nstr("match"),
	),
	boolean("strict"),
}}

// AlterClientQuotas (KIP-546): a null entity_name is the type's default
// entity.
var alterClientQuotasRequest = message{key: 49, name: "AlterClientQuotas", minVersion: 0, maxVersion: 1, flexibleFrom: 1, fields: []field{
	array[kmsg.AlterClientQuotasRequestEntry]("entries",
		array[kmsg.AlterClientQuotasRequestEntryEntity]("entity",
			str("entity_type"),
			nstr("entity_name"),
		),
		array[kmsg.AlterClientQuotasRequestEntryOp]("ops",
			str("key"),
			prim(kindFloat64, "value"),
			boolean("remove"),
		),
	),
	boolean("validate_only"),
}}

// DescribeLogDirs (KIP-113): null topics asks for every partition; `topic
// describe` takes the sizes on disk from it.
var describeLogDirsRequest = message{key: 35, name: "DescribeLogDirs", minVersion: 0, maxVersion: 4, flexibleFrom: 2, fields: []field{
	array[kmsg.DescribeLogDirsRequestTopic]("topics",
		str("topic"),
		primArray("partitions", kindInt32),
	).nullable(0),
}}

// DescribeQuorum (KIP-595) is flexible from v0, as every KRaft-era API is;
// v1 adds the voters' last fetch and caught-up times to the response
// (KIP-836), not the request.
var describeQuorumRequest = message{key: 55, name: "DescribeQuorum", minVersion: 0, maxVersion: 2, flexibleFrom: 0, fields: []field{
	array[kmsg.DescribeQuorumRequestTopic]("topics",
		str("topic_name"),
		array[kmsg.DescribeQuorumRequestTopicPartition]("partitions",
			i32("partition_index"),
		),
	),
}}

// DescribeCluster (KIP-700): endpoint_type (v1, KIP-919) asks for the
// controllers instead of the brokers, for admin clients that bootstrap
// from the controllers.
var describeClusterRequest = message{key: 60, name: "DescribeCluster", minVersion: 0, maxVersion: 1, flexibleFrom: 0, fields: []field{
	boolean("include_cluster_authorized_operations"),
	i8("endpoint_type").from(1),
	boolean("include_fenced_brokers").from(2),
}}

// DescribeProducers (KIP-664) lists the idempotent producers' state per
// partition.
var describeProducersRequest = message{key: 61, name: "DescribeProducers", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	array[kmsg.DescribeProducersRequestTopic]("topics",
		str("name"),
		primArray("partition_indexes", kindInt32),
	),
}}

// The ACL requests (KIP-140): filters carry nullable names, principals and
// hosts (null matches any); v1 adds the resource pattern type (KIP-290),
// v2 is flexible.
var describeACLsRequest = message{key: 29, name: "DescribeAcls", minVersion: 0, maxVersion: 3, flexibleFrom: 2, fields: []field{
	i8("resource_type_filter"),
	nstr("resource_name_filter"),
	i8("pattern_type_filter").from(1),
	nstr("principal_filter"),
	nstr("host_filter"),
	i8("operation"),
	i8("permission_type"),
}}

var createACLsRequest = message{key: 30, name: "CreateAcls", minVersion: 0, maxVersion: 3, flexibleFrom: 2, fields: []field{
	array[kmsg.CreateACLsRequestCreation]("creations",
		i8("resource_type"),
		str("resource_name"),
		i8("resource_pattern_type").from(1),
		str("principal"),
		str("host"),
		i8("operation"),
		i8("permission_type"),
	),
}}

var deleteACLsRequest = message{key: 31, name: "DeleteAcls", minVersion: 0, maxVersion: 3, flexibleFrom: 2, fields: []field{
	array[kmsg.DeleteACLsRequestFilter]("filters",
		i8("resource_type_filter"),
		nstr("resource_name_filter"),
		i8("pattern_type_filter").from(1),
		nstr("principal_filter"),
		nstr("host_filter"),
		i8("operation"),
		i8("permission_type"),
	),
}}

// SaslHandshake names the mechanism. v0 is the old flow where the tokens
// follow as raw frames (kafka-python, old librdkafka); from v1 they come
// in SaslAuthenticate requests.
var saslHandshakeRequest = message{key: 17, name: "SaslHandshake", minVersion: 0, maxVersion: 1, flexibleFrom: allVersions, fields: []field{
	str("mechanism"),
}}

// SaslAuthenticate carries one SASL token (KIP-152); v1 answers the
// session lifetime (KIP-368), v2 is flexible.
var saslAuthenticateRequest = message{key: 36, name: "SaslAuthenticate", minVersion: 0, maxVersion: 2, flexibleFrom: 2, fields: []field{
	byts("auth_bytes"),
}}

// DescribeUserScramCredentials (KIP-554): null users means every user.
var describeUserScramCredentialsRequest = message{key: 50, name: "DescribeUserScramCredentials", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	array[kmsg.DescribeUserSCRAMCredentialsRequestUser]("users",
		str("name"),
	).nullable(0),
}}

// AlterUserScramCredentials (KIP-554): the client sends salt and salted
// password, never the password.
var alterUserScramCredentialsRequest = message{key: 51, name: "AlterUserScramCredentials", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	array[kmsg.AlterUserSCRAMCredentialsRequestDeletion]("deletions",
		str("name"),
		i8("mechanism"),
	),
	array[kmsg.AlterUserSCRAMCredentialsRequestUpsertion]("upsertions",
		str("name"),
		i8("mechanism"),
		i32("iterations"),
		byts("salt"),
		byts("salted_password"),
	),
}}

// DescribeTransactions (KIP-664) describes transactional ids.
var describeTransactionsRequest = message{key: 65, name: "DescribeTransactions", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	primArray("transactional_ids", kindString),
}}

// ListTransactions (KIP-664) lists transactional ids; v1 adds the duration
// filter (KIP-994).
var listTransactionsRequest = message{key: 66, name: "ListTransactions", minVersion: 0, maxVersion: 1, flexibleFrom: 0, fields: []field{
	primArray("state_filters", kindString),
	primArray("producer_id_filters", kindInt64),
	i64("duration_filter").from(1),
}}

// WriteTxnMarkers (KIP-98) is sent by a transaction coordinator to the
// leaders of a transaction's partitions to append its COMMIT or ABORT
// marker; v1 is flexible, v2 adds transaction_version (KIP-1228), not
// served yet.
var writeTxnMarkersRequest = message{key: 27, name: "WriteTxnMarkers", minVersion: 0, maxVersion: 1, flexibleFrom: 1, fields: []field{
	array[kmsg.WriteTxnMarkersRequestMarker]("markers",
		i64("producer_id"),
		i16("producer_epoch"),
		boolean("transaction_result"),
		array[kmsg.WriteTxnMarkersRequestMarkerTopic]("topics",
			str("name"),
			primArray("partition_indexes", kindInt32),
		),
		i32("coordinator_epoch"),
		i8("transaction_version").from(2),
	),
}}

// TxnOffsetCommit (KIP-98) commits a consumer's offsets inside a
// transaction; v2 adds the leader epoch, v3 (flexible) the member id,
// generation and group.instance.id (KIP-447). v6 names topics by id.
var txnOffsetCommitRequest = message{key: 28, name: "TxnOffsetCommit", minVersion: 0, maxVersion: 3, flexibleFrom: 3, fields: []field{
	str("transactional_id"),
	str("group_id"),
	i64("producer_id"),
	i16("producer_epoch"),
	i32("generation_id").from(3),
	str("member_id").from(3),
	nstr("group_instance_id").from(3),
	array[kmsg.TxnOffsetCommitRequestTopic]("topics",
		str("name").versions(0, 5),
		uuid("topic_id").from(6),
		array[kmsg.TxnOffsetCommitRequestTopicPartition]("partitions",
			i32("partition_index"),
			i64("committed_offset"),
			i32("committed_leader_epoch").from(2),
			nstr("committed_metadata"),
		),
	),
}}

// ConsumerGroupHeartbeat is KIP-848's one group request: join (epoch 0),
// heartbeat, leave (-1, -2). Fields that did not change since the last
// heartbeat are null; v1 (Kafka 4.0) adds the regex subscription and
// makes the client choose its member id.
var consumerGroupHeartbeatRequest = message{key: 68, name: "ConsumerGroupHeartbeat", minVersion: 0, maxVersion: 1, flexibleFrom: 0, fields: []field{
	str("group_id"),
	str("member_id"),
	i32("member_epoch"),
	nstr("instance_id"),
	nstr("rack_id"),
	i32("rebalance_timeout_ms"),
	primArray("subscribed_topic_names", kindString).nullable(0),
	nstr("subscribed_topic_regex").from(1),
	nstr("server_assignor"),
	array[kmsg.ConsumerGroupHeartbeatRequestTopic]("topic_partitions",
		uuid("topic_id"),
		primArray("partitions", kindInt32),
	).nullable(0),
}}

// ConsumerGroupDescribe (KIP-848) describes consumer-protocol groups.
var consumerGroupDescribeRequest = message{key: 69, name: "ConsumerGroupDescribe", minVersion: 0, maxVersion: 1, flexibleFrom: 0, fields: []field{
	primArray("group_ids", kindString),
	boolean("include_authorized_operations"),
}}

// requestSchemas indexes the schemas by API key.
var requestSchemas = indexSchemas(
	&produceRequest, &fetchRequest, &listOffsetsRequest, &metadataRequest,
	&offsetCommitRequest, &offsetFetchRequest, &findCoordinatorRequest,
	&joinGroupRequest, &heartbeatRequest, &leaveGroupRequest, &syncGroupRequest,
	&describeGroupsRequest, &listGroupsRequest, &apiVersionsRequest,
	&createTopicsRequest, &deleteTopicsRequest, &deleteRecordsRequest,
	&initProducerIDRequest, &offsetForLeaderEpochRequest,
	&describeACLsRequest, &createACLsRequest, &deleteACLsRequest,
	&describeConfigsRequest, &alterConfigsRequest, &describeLogDirsRequest, &createPartitionsRequest,
	&deleteGroupsRequest, &electLeadersRequest, &incrementalAlterConfigsRequest, &offsetDeleteRequest,
	&describeQuorumRequest, &describeClusterRequest, &describeProducersRequest,
	&saslHandshakeRequest, &saslAuthenticateRequest,
	&describeUserScramCredentialsRequest, &alterUserScramCredentialsRequest,
	&addPartitionsToTxnRequest, &addOffsetsToTxnRequest, &endTxnRequest,
	&describeTransactionsRequest, &listTransactionsRequest,
	&describeClientQuotasRequest, &alterClientQuotasRequest,
	&writeTxnMarkersRequest, &txnOffsetCommitRequest,
	&consumerGroupHeartbeatRequest, &consumerGroupDescribeRequest,
	&shareGroupHeartbeatRequest, &shareGroupDescribeRequest, &shareFetchRequest, &shareAcknowledgeRequest,
	&initializeShareGroupStateRequest, &readShareGroupStateRequest, &writeShareGroupStateRequest,
	&deleteShareGroupStateRequest, &readShareGroupStateSummaryRequest,
	&describeShareGroupOffsetsRequest, &alterShareGroupOffsetsRequest, &deleteShareGroupOffsetsRequest,
)

func indexSchemas(messages ...*message) []*message {
	var maxKey int16
	for _, m := range messages {
		maxKey = max(maxKey, m.key)
	}
	index := make([]*message, maxKey+1)
	for _, m := range messages {
		m.prepare()
		index[m.key] = m
	}
	return index
}

// schemaFor returns the schema of key at version, or nil.
func schemaFor(key, version int16) *message {
	if key < 0 || int(key) >= len(requestSchemas) {
		return nil
	}
	m := requestSchemas[key]
	if m == nil || version < m.minVersion || version > m.maxVersion {
		return nil
	}
	return m
}
