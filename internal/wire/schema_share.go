package wire

import "github.com/twmb/franz-go/pkg/kmsg"

// Share group requests (KIP-932), flexible from v0. Kafka 4.1 serves v1
// of each; v0 was 4.0's early access and was removed, so it is not
// checked. ShareFetch and ShareAcknowledge v2 (Kafka 4.2) add the acquire
// mode and renew acknowledgements (KIP-1206, KIP-1222).

var shareGroupHeartbeatRequest = message{key: 76, name: "ShareGroupHeartbeat", minVersion: 1, maxVersion: 1, flexibleFrom: 0, fields: []field{
	str("group_id"),
	str("member_id"),
	i32("member_epoch"),
	nstr("rack_id"),
	primArray("subscribed_topic_names", kindString).nullable(0),
}}

var shareGroupDescribeRequest = message{key: 77, name: "ShareGroupDescribe", minVersion: 1, maxVersion: 1, flexibleFrom: 0, fields: []field{
	primArray("group_ids", kindString),
	boolean("include_authorized_operations"),
}}

var shareFetchRequest = message{key: 78, name: "ShareFetch", minVersion: 1, maxVersion: 2, flexibleFrom: 0, fields: []field{
	nstr("group_id"),
	nstr("member_id"),
	i32("share_session_epoch"),
	i32("max_wait_ms"),
	i32("min_bytes"),
	i32("max_bytes"),
	i32("max_records").from(1),
	i32("batch_size").from(1),
	i8("share_acquire_mode").from(2),
	boolean("is_renew_ack").from(2),
	array[kmsg.ShareFetchRequestTopic]("topics",
		uuid("topic_id"),
		array[kmsg.ShareFetchRequestTopicPartition]("partitions",
			i32("partition_index"),
			i32("partition_max_bytes").versions(0, 0),
			array[kmsg.ShareFetchRequestTopicPartitionAcknowledgementBatch]("acknowledgement_batches",
				i64("first_offset"),
				i64("last_offset"),
				primArray("acknowledge_types", kindInt8),
			),
		),
	),
	array[kmsg.ShareFetchRequestForgottenTopicsData]("forgotten_topics_data",
		uuid("topic_id"),
		primArray("partitions", kindInt32),
	),
}}

var shareAcknowledgeRequest = message{key: 79, name: "ShareAcknowledge", minVersion: 1, maxVersion: 2, flexibleFrom: 0, fields: []field{
	nstr("group_id"),
	nstr("member_id"),
	i32("share_session_epoch"),
	boolean("is_renew_ack").from(2),
	array[kmsg.ShareAcknowledgeRequestTopic]("topics",
		uuid("topic_id"),
		array[kmsg.ShareAcknowledgeRequestTopicPartition]("partitions",
			i32("partition_index"),
			array[kmsg.ShareAcknowledgeRequestTopicPartitionAcknowledgementBatch]("acknowledgement_batches",
				i64("first_offset"),
				i64("last_offset"),
				primArray("acknowledge_types", kindInt8),
			),
		),
	),
}}

// The share coordinator's requests (KIP-932), sent by share partition
// leaders and group coordinators: v0 of each, as Kafka 4.1 serves them.
// v1 of WriteShareGroupState and ReadShareGroupStateSummary (Kafka 4.2's
// delivery complete count) is not served.

var initializeShareGroupStateRequest = message{key: 83, name: "InitializeShareGroupState", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	str("group_id"),
	array[kmsg.InitializeShareGroupStateRequestTopic]("topics",
		uuid("topic_id"),
		array[kmsg.InitializeShareGroupStateRequestTopicPartition]("partitions",
			i32("partition"),
			i32("state_epoch"),
			i64("start_offset"),
		),
	),
}}

var readShareGroupStateRequest = message{key: 84, name: "ReadShareGroupState", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	str("group_id"),
	array[kmsg.ReadShareGroupStateRequestTopic]("topics",
		uuid("topic_id"),
		array[kmsg.ReadShareGroupStateRequestTopicPartition]("partitions",
			i32("partition"),
			i32("leader_epoch"),
		),
	),
}}

var writeShareGroupStateRequest = message{key: 85, name: "WriteShareGroupState", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	str("group_id"),
	array[kmsg.WriteShareGroupStateRequestTopic]("topics",
		uuid("topic_id"),
		array[kmsg.WriteShareGroupStateRequestTopicPartition]("partitions",
			i32("partition"),
			i32("state_epoch"),
			i32("leader_epoch"),
			i64("start_offset"),
			i32("delivery_complete_count").from(1),
			array[kmsg.WriteShareGroupStateRequestTopicPartitionStateBatch]("state_batches",
				i64("first_offset"),
				i64("last_offset"),
				i8("delivery_state"),
				i16("delivery_count"),
			),
		),
	),
}}

var deleteShareGroupStateRequest = message{key: 86, name: "DeleteShareGroupState", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	str("group_id"),
	array[kmsg.DeleteShareGroupStateRequestTopic]("topics",
		uuid("topic_id"),
		array[kmsg.DeleteShareGroupStateRequestTopicPartition]("partitions",
			i32("partition"),
		),
	),
}}

var readShareGroupStateSummaryRequest = message{key: 87, name: "ReadShareGroupStateSummary", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	str("group_id"),
	array[kmsg.ReadShareGroupStateSummaryRequestTopic]("topics",
		uuid("topic_id"),
		array[kmsg.ReadShareGroupStateSummaryRequestTopicPartition]("partitions",
			i32("partition"),
			i32("leader_epoch"),
		),
	),
}}

// The share group offset admin requests (KIP-932), v0 as Kafka 4.1
// serves them. v1 of DescribeShareGroupOffsets (Kafka 4.2) only adds the
// lag to the response, so its request is v0's.

var describeShareGroupOffsetsRequest = message{key: 90, name: "DescribeShareGroupOffsets", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	array[kmsg.DescribeShareGroupOffsetsRequestGroup]("groups",
		str("group_id"),
		array[kmsg.DescribeShareGroupOffsetsRequestGroupTopic]("topics",
			str("topic_name"),
			primArray("partitions", kindInt32),
		).nullable(0),
	),
}}

var alterShareGroupOffsetsRequest = message{key: 91, name: "AlterShareGroupOffsets", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	str("group_id"),
	array[kmsg.AlterShareGroupOffsetsRequestTopic]("topics",
		str("topic_name"),
		array[kmsg.AlterShareGroupOffsetsRequestTopicPartition]("partitions",
			i32("partition_index"),
			i64("start_offset"),
		),
	),
}}

var deleteShareGroupOffsetsRequest = message{key: 92, name: "DeleteShareGroupOffsets", minVersion: 0, maxVersion: 0, flexibleFrom: 0, fields: []field{
	str("group_id"),
	array[kmsg.DeleteShareGroupOffsetsRequestTopic]("topics",
		str("topic_name"),
	),
}}
