package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// The cases of TestACLMatrix, one or more per API key, in key order.

var (
	topicAuthz   = kerr.TopicAuthorizationFailed.Code
	groupAuthz   = kerr.GroupAuthorizationFailed.Code
	clusterAuthz = kerr.ClusterAuthorizationFailed.Code
	txnAuthz     = kerr.TransactionalIDAuthorizationFailed.Code
)

func aclTopic(op auth.Operation) auth.Binding { return aclAllow(auth.ResourceTopic, "t", op) }
func aclGroup(op auth.Operation) auth.Binding { return aclAllow(auth.ResourceGroup, "g", op) }
func aclCluster(op auth.Operation) auth.Binding {
	return aclAllow(auth.ResourceCluster, auth.ClusterName, op)
}

func aclStr(s string) *string { return &s }

func aclOffsetCommit() *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version, req.Group, req.Generation = 8, "g", -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset = 0, 1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// long: a table of every API's cases; one entry per resource, easier to
// check against Kafka's handlers side by side than split up.
func aclMatrixCases(t *testing.T, h *harness) []aclCase {
	hw := func(topic string) int64 {
		p, err := h.broker.Partitions.Partition(topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		return p.Offsets().HighWatermark
	}
	produced := hw("t")
	cases := []aclCase{
		{name: "Produce topic", acls: []auth.Binding{aclTopic(auth.OpWrite)}, denied: topicAuthz,
			req: func() kmsg.Request {
				return dpProduceRequest(9, -1, "t", map[int32][]byte{0: dpBatch(t, "m", 1, dpBatchOptions{})})
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode },
			effect: func() bool {
				moved := hw("t") > produced
				produced = hw("t")
				return moved
			}},
		{name: "Produce transactional id", given: []auth.Binding{aclTopic(auth.OpWrite)}, acls: []auth.Binding{aclAllow(auth.ResourceTransactionalID, "tx", auth.OpWrite)},
			denied: txnAuthz,
			req: func() kmsg.Request {
				req := dpProduceRequest(9, -1, "t", map[int32][]byte{0: dpBatch(t, "m", 1, dpBatchOptions{})})
				req.TransactionID = aclStr("tx")
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "Fetch topic", acls: []auth.Binding{aclTopic(auth.OpRead)}, denied: topicAuthz,
			req: func() kmsg.Request {
				return dpFetchRequest(12, 0, 0, dpFetchPart{topic: "t", partition: 0, offset: 0})
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "Fetch as replica", acls: []auth.Binding{aclCluster(auth.OpClusterAction)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := dpFetchRequest(12, 0, 0, dpFetchPart{topic: "t", partition: 0, offset: 0})
				req.ReplicaID = 2
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "ListOffsets topic", acls: []auth.Binding{aclTopic(auth.OpDescribe)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrListOffsetsRequest()
				req.Version = 7
				rt := kmsg.NewListOffsetsRequestTopic()
				rt.Topic = "t"
				rp := kmsg.NewListOffsetsRequestTopicPartition()
				rp.Timestamp = -1
				rt.Partitions = append(rt.Partitions, rp)
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "Metadata named topic", acls: []auth.Binding{aclTopic(auth.OpDescribe)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrMetadataRequest()
				req.Version = 12
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = aclStr("t")
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.MetadataResponse).Topics[0].ErrorCode }},
		{name: "Metadata all topics", acls: []auth.Binding{aclTopic(auth.OpDescribe)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrMetadataRequest()
				req.Version = 12
				return req
			},
			// Hidden topics are not an error: "t" missing is the refusal.
			code: func(r kmsg.Response) int16 {
				for _, tp := range r.(*kmsg.MetadataResponse).Topics {
					if tp.Topic != nil && *tp.Topic == "t" {
						return tp.ErrorCode
					}
				}
				return topicAuthz
			}},
		{name: "OffsetCommit group", acls: []auth.Binding{aclGroup(auth.OpRead), aclTopic(auth.OpRead)}, denied: groupAuthz,
			req:  func() kmsg.Request { return aclOffsetCommit() },
			code: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode }},
		{name: "OffsetCommit topic", given: []auth.Binding{aclGroup(auth.OpRead)}, acls: []auth.Binding{aclTopic(auth.OpRead)}, denied: topicAuthz,
			req: func() kmsg.Request { return aclOffsetCommit() },
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "OffsetFetch group v7", acls: []auth.Binding{aclGroup(auth.OpDescribe)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrOffsetFetchRequest()
				req.Version, req.Group = 7, "g"
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetFetchResponse).ErrorCode }},
		{name: "OffsetFetch topic v8", given: []auth.Binding{aclGroup(auth.OpDescribe)}, acls: []auth.Binding{aclTopic(auth.OpDescribe)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrOffsetFetchRequest()
				req.Version = 8
				rg := kmsg.NewOffsetFetchRequestGroup()
				rg.Group = "g"
				rt := kmsg.NewOffsetFetchRequestGroupTopic()
				rt.Topic, rt.Partitions = "t", []int32{0}
				rg.Topics = append(rg.Topics, rt)
				req.Groups = append(req.Groups, rg)
				return req
			},
			code: func(r kmsg.Response) int16 {
				g := r.(*kmsg.OffsetFetchResponse).Groups[0]
				if g.ErrorCode != 0 {
					return g.ErrorCode
				}
				return g.Topics[0].Partitions[0].ErrorCode
			}},
		{name: "FindCoordinator group", acls: []auth.Binding{aclGroup(auth.OpDescribe)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.Version, req.CoordinatorKeys = 4, []string{"g"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.FindCoordinatorResponse).Coordinators[0].ErrorCode }},
		{name: "FindCoordinator transaction", acls: []auth.Binding{aclAllow(auth.ResourceTransactionalID, "tx", auth.OpDescribe)},
			denied: txnAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrFindCoordinatorRequest()
				req.Version, req.CoordinatorType, req.CoordinatorKey = 3, 1, "tx"
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.FindCoordinatorResponse).ErrorCode }},
		{name: "JoinGroup", acls: []auth.Binding{aclGroup(auth.OpRead)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrJoinGroupRequest()
				req.Version, req.Group, req.ProtocolType = 5, "g", "consumer"
				req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10_000, 10_000
				req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0}}}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.JoinGroupResponse).ErrorCode }},
		{name: "Heartbeat", acls: []auth.Binding{aclGroup(auth.OpRead)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrHeartbeatRequest()
				req.Version, req.Group, req.MemberID, req.Generation = 4, "g", "m", 1
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.HeartbeatResponse).ErrorCode }},
		{name: "LeaveGroup", acls: []auth.Binding{aclGroup(auth.OpRead)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrLeaveGroupRequest()
				req.Version, req.Group, req.MemberID = 2, "g", "m"
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.LeaveGroupResponse).ErrorCode }},
		{name: "SyncGroup", acls: []auth.Binding{aclGroup(auth.OpRead)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrSyncGroupRequest()
				req.Version, req.Group, req.MemberID, req.Generation = 4, "g", "m", 1
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.SyncGroupResponse).ErrorCode }},
		{name: "DescribeGroups", acls: []auth.Binding{aclGroup(auth.OpDescribe)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeGroupsRequest()
				req.Version, req.Groups = 5, []string{"g"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeGroupsResponse).Groups[0].ErrorCode }},
		{name: "ListGroups", acls: []auth.Binding{aclGroup(auth.OpDescribe)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrListGroupsRequest()
				req.Version = 4
				return req
			},
			// Groups the principal may not describe are left out.
			code: func(r kmsg.Response) int16 {
				resp := r.(*kmsg.ListGroupsResponse)
				for _, g := range resp.Groups {
					if g.Group == "g" {
						return resp.ErrorCode
					}
				}
				return groupAuthz
			}},
		{name: "CreateTopics", acls: []auth.Binding{aclAllow(auth.ResourceTopic, "new", auth.OpCreate)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrCreateTopicsRequest()
				req.Version, req.TimeoutMillis = 7, 10_000
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "new", 1, 1
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode },
			effect: func() bool {
				_, ok := h.cp.Image().Topic("new")
				return ok
			}},
		{name: "CreateTopics by cluster CREATE", acls: []auth.Binding{aclCluster(auth.OpCreate)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrCreateTopicsRequest()
				req.Version, req.TimeoutMillis = 7, 10_000
				rt := kmsg.NewCreateTopicsRequestTopic()
				rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "new2", 1, 1
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode },
			effect: func() bool {
				_, ok := h.cp.Image().Topic("new2")
				return ok
			}},
		{name: "DeleteTopics", acls: []auth.Binding{aclAllow(auth.ResourceTopic, "del", auth.OpDelete)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteTopicsRequest()
				req.Version, req.TimeoutMillis, req.TopicNames = 5, 10_000, []string{"del"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteTopicsResponse).Topics[0].ErrorCode },
			effect: func() bool {
				_, ok := h.cp.Image().Topic("del")
				return !ok
			}},
		{name: "DeleteRecords", acls: []auth.Binding{aclAllow(auth.ResourceTopic, "records", auth.OpDelete)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteRecordsRequest()
				req.Version, req.TimeoutMillis = 2, 10_000
				rt := kmsg.NewDeleteRecordsRequestTopic()
				rt.Topic = "records"
				rt.Partitions = []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 1}}
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteRecordsResponse).Topics[0].Partitions[0].ErrorCode },
			effect: func() bool {
				p, err := h.broker.Partitions.Partition("records", 0)
				return err == nil && p.Offsets().LogStartOffset == 1
			}},
		{name: "InitProducerId idempotent", acls: []auth.Binding{aclCluster(auth.OpIdempotentWrite)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrInitProducerIDRequest()
				req.Version = 4
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode }},
		{name: "InitProducerId idempotent by topic WRITE", acls: []auth.Binding{aclTopic(auth.OpWrite)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrInitProducerIDRequest()
				req.Version = 4
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode }},
		{name: "InitProducerId transactional", acls: []auth.Binding{aclAllow(auth.ResourceTransactionalID, "tx", auth.OpWrite)}, denied: txnAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrInitProducerIDRequest()
				req.Version, req.TransactionalID = 4, aclStr("tx")
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.InitProducerIDResponse).ErrorCode }},
		{name: "OffsetForLeaderEpoch topic", acls: []auth.Binding{aclTopic(auth.OpDescribe)}, denied: topicAuthz,
			req:  func() kmsg.Request { return aclOffsetForLeaderEpoch(-1) },
			code: aclOffsetForLeaderEpochCode},
		{name: "OffsetForLeaderEpoch replica", acls: []auth.Binding{aclCluster(auth.OpClusterAction)}, denied: clusterAuthz,
			req:  func() kmsg.Request { return aclOffsetForLeaderEpoch(2) },
			code: aclOffsetForLeaderEpochCode},
	}
	cases = append(cases, aclTxnCases()...)
	cases = append(cases, aclShareCases(h)...)
	cases = append(cases, aclShareOffsetCases()...)
	return append(cases, aclAdminCases(t, h)...)
}

func aclOffsetForLeaderEpoch(replicaID int32) *kmsg.OffsetForLeaderEpochRequest {
	req := kmsg.NewPtrOffsetForLeaderEpochRequest()
	req.Version, req.ReplicaID = 4, replicaID
	rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func aclOffsetForLeaderEpochCode(r kmsg.Response) int16 {
	return r.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode
}

// aclTxnCases are the matrix cases of the transaction and KIP-848 APIs.
//
// long: a table, one entry per API and resource, as aclMatrixCases.
func aclTxnCases() []aclCase {
	txnWrite := aclAllow(auth.ResourceTransactionalID, "tx", auth.OpWrite)
	addPartitions := func() kmsg.Request {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.Version, req.TransactionalID, req.ProducerID = 3, "tx", 1
		req.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "t", Partitions: []int32{0}}}
		return req
	}
	addPartitionsCode := func(r kmsg.Response) int16 {
		return r.(*kmsg.AddPartitionsToTxnResponse).Topics[0].Partitions[0].ErrorCode
	}
	addOffsets := func() kmsg.Request {
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.Version, req.TransactionalID, req.ProducerID, req.Group = 3, "tx", 1, "g"
		return req
	}
	addOffsetsCode := func(r kmsg.Response) int16 { return r.(*kmsg.AddOffsetsToTxnResponse).ErrorCode }
	txnCommit := func() kmsg.Request {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version, req.TransactionalID, req.Group, req.ProducerID, req.Generation = 3, "tx", "g", 1, -1
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Offset = 1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	txnCommitCode := func(r kmsg.Response) int16 {
		return r.(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	return []aclCase{
		{name: "AddPartitionsToTxn transactional id", acls: []auth.Binding{txnWrite, aclTopic(auth.OpWrite)}, denied: txnAuthz,
			req: addPartitions, code: addPartitionsCode},
		{name: "AddPartitionsToTxn topic", given: []auth.Binding{txnWrite}, acls: []auth.Binding{aclTopic(auth.OpWrite)}, denied: topicAuthz,
			req: addPartitions, code: addPartitionsCode},
		{name: "AddPartitionsToTxn v4 (brokers)", acls: []auth.Binding{aclCluster(auth.OpClusterAction)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrAddPartitionsToTxnRequest()
				req.Version = 4
				tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
				tx.TransactionalID, tx.ProducerID, tx.VerifyOnly = "tx", 1, true
				tx.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "t", Partitions: []int32{0}}}
				req.Transactions = append(req.Transactions, tx)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AddPartitionsToTxnResponse).ErrorCode }},
		{name: "AddOffsetsToTxn transactional id", acls: []auth.Binding{txnWrite, aclGroup(auth.OpRead)}, denied: txnAuthz,
			req: addOffsets, code: addOffsetsCode},
		{name: "AddOffsetsToTxn group", given: []auth.Binding{txnWrite}, acls: []auth.Binding{aclGroup(auth.OpRead)}, denied: groupAuthz,
			req: addOffsets, code: addOffsetsCode},
		{name: "EndTxn", acls: []auth.Binding{txnWrite}, denied: txnAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrEndTxnRequest()
				req.Version, req.TransactionalID, req.ProducerID = 3, "tx", 1
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.EndTxnResponse).ErrorCode }},
		{name: "WriteTxnMarkers", acls: []auth.Binding{aclCluster(auth.OpClusterAction)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrWriteTxnMarkersRequest()
				req.Version = 1
				m := kmsg.NewWriteTxnMarkersRequestMarker()
				m.ProducerID, m.Committed = 999, false
				m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "t", Partitions: []int32{1}}}
				req.Markers = append(req.Markers, m)
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.WriteTxnMarkersResponse).Markers[0].Topics[0].Partitions[0].ErrorCode
			}},
		{name: "TxnOffsetCommit transactional id", acls: []auth.Binding{txnWrite, aclGroup(auth.OpRead), aclTopic(auth.OpRead)},
			denied: txnAuthz, req: txnCommit, code: txnCommitCode},
		{name: "TxnOffsetCommit group", given: []auth.Binding{txnWrite}, acls: []auth.Binding{aclGroup(auth.OpRead), aclTopic(auth.OpRead)},
			denied: groupAuthz, req: txnCommit, code: txnCommitCode},
		{name: "TxnOffsetCommit topic", given: []auth.Binding{txnWrite, aclGroup(auth.OpRead)}, acls: []auth.Binding{aclTopic(auth.OpRead)},
			denied: topicAuthz, req: txnCommit, code: txnCommitCode},
		{name: "DescribeTransactions", acls: []auth.Binding{aclAllow(auth.ResourceTransactionalID, "tx", auth.OpDescribe)}, denied: txnAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeTransactionsRequest()
				req.TransactionalIDs = []string{"tx"}
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.DescribeTransactionsResponse).TransactionStates[0].ErrorCode
			}},
		{name: "ListTransactions", acls: []auth.Binding{aclAllow(auth.ResourceTransactionalID, "tx", auth.OpDescribe)}, denied: txnAuthz,
			req: func() kmsg.Request { return kmsg.NewPtrListTransactionsRequest() },
			// Ids the principal may not describe are left out.
			code: func(r kmsg.Response) int16 {
				resp := r.(*kmsg.ListTransactionsResponse)
				for _, s := range resp.TransactionStates {
					if s.TransactionalID == "tx" {
						return resp.ErrorCode
					}
				}
				return txnAuthz
			}},
		{name: "ConsumerGroupHeartbeat group", acls: []auth.Binding{aclAllow(auth.ResourceGroup, "cg", auth.OpRead), aclTopic(auth.OpDescribe)},
			denied: groupAuthz, req: aclConsumerHeartbeat,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode }},
		{name: "ConsumerGroupHeartbeat topic", given: []auth.Binding{aclAllow(auth.ResourceGroup, "cg", auth.OpRead)},
			acls: []auth.Binding{aclTopic(auth.OpDescribe)}, denied: topicAuthz, req: aclConsumerHeartbeat,
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode }},
		{name: "ConsumerGroupDescribe", acls: []auth.Binding{aclAllow(auth.ResourceGroup, "cg", auth.OpDescribe)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrConsumerGroupDescribeRequest()
				req.Groups = []string{"cg"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ConsumerGroupDescribeResponse).Groups[0].ErrorCode }},
	}
}

func aclConsumerHeartbeat() kmsg.Request {
	req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	req.Version, req.Group, req.MemberID, req.RebalanceTimeoutMillis = 1, "cg", "m-acl", 10_000
	req.SubscribedTopicNames = []string{"t"}
	req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	return req
}

// aclShareCases are the matrix cases of the share-group APIs (KIP-932).
func aclShareCases(h *harness) []aclCase {
	topicID := func() [16]byte {
		tp, _ := h.cp.Image().Topic("t")
		return tp.ID
	}
	shareGroup := aclAllow(auth.ResourceGroup, "sg", auth.OpRead)
	shareFetch := func() kmsg.Request {
		req := kmsg.NewPtrShareFetchRequest()
		req.Version = shareFetchHandler.minVersion
		req.GroupID, req.MemberID = aclStr("sg"), aclStr("m")
		rt := kmsg.NewShareFetchRequestTopic()
		rt.TopicID = topicID()
		rt.Partitions = []kmsg.ShareFetchRequestTopicPartition{{Partition: 0}}
		req.Topics = append(req.Topics, rt)
		return req
	}
	shareAck := func() kmsg.Request {
		req := kmsg.NewPtrShareAcknowledgeRequest()
		req.Version = shareAcknowledgeHandler.minVersion
		req.GroupID, req.MemberID = aclStr("sg"), aclStr("m")
		rt := kmsg.NewShareAcknowledgeRequestTopic()
		rt.TopicID = topicID()
		req.Topics = append(req.Topics, rt)
		return req
	}
	return append([]aclCase{
		{name: "ShareGroupHeartbeat", acls: []auth.Binding{shareGroup, aclTopic(auth.OpRead)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrShareGroupHeartbeatRequest()
				req.Version = shareGroupHeartbeatHandler.minVersion
				req.GroupID, req.MemberID, req.SubscribedTopicNames = "sg", "m", []string{"t"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ShareGroupHeartbeatResponse).ErrorCode }},
		{name: "ShareGroupDescribe", acls: []auth.Binding{aclAllow(auth.ResourceGroup, "sg", auth.OpDescribe)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrShareGroupDescribeRequest()
				req.Version = shareGroupDescribeHandler.minVersion
				req.GroupIDs = []string{"sg"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ShareGroupDescribeResponse).Groups[0].ErrorCode }},
		{name: "ShareFetch group", acls: []auth.Binding{shareGroup, aclTopic(auth.OpRead)}, denied: groupAuthz,
			req: shareFetch, code: func(r kmsg.Response) int16 { return r.(*kmsg.ShareFetchResponse).ErrorCode }},
		{name: "ShareFetch topic", given: []auth.Binding{shareGroup}, acls: []auth.Binding{aclTopic(auth.OpRead)}, denied: topicAuthz,
			req: shareFetch, code: func(r kmsg.Response) int16 { return r.(*kmsg.ShareFetchResponse).ErrorCode }},
		{name: "ShareAcknowledge", acls: []auth.Binding{shareGroup, aclTopic(auth.OpRead)}, denied: groupAuthz,
			req: shareAck, code: func(r kmsg.Response) int16 { return r.(*kmsg.ShareAcknowledgeResponse).ErrorCode }},
	}, aclShareStateCases(topicID)...)
}

// aclShareStateCases are the share coordinator's APIs (83–87): sent by
// brokers, so CLUSTER_ACTION, as in Kafka.
func aclShareStateCases(topicID func() [16]byte) []aclCase {
	cluster := []auth.Binding{aclCluster(auth.OpClusterAction)}
	return []aclCase{
		{name: "InitializeShareGroupState", acls: cluster, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrInitializeShareGroupStateRequest()
				req.GroupID = "sg"
				req.Topics = []kmsg.InitializeShareGroupStateRequestTopic{{TopicID: topicID(),
					Partitions: []kmsg.InitializeShareGroupStateRequestTopicPartition{{Partition: 0, StateEpoch: 1}}}}
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.InitializeShareGroupStateResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "ReadShareGroupState", acls: cluster, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrReadShareGroupStateRequest()
				req.GroupID = "sg"
				req.Topics = []kmsg.ReadShareGroupStateRequestTopic{{TopicID: topicID(),
					Partitions: []kmsg.ReadShareGroupStateRequestTopicPartition{{Partition: 0}}}}
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.ReadShareGroupStateResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "WriteShareGroupState", acls: cluster, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrWriteShareGroupStateRequest()
				req.GroupID = "sg"
				req.Topics = []kmsg.WriteShareGroupStateRequestTopic{{TopicID: topicID(),
					Partitions: []kmsg.WriteShareGroupStateRequestTopicPartition{{Partition: 0, StateEpoch: 1, StartOffset: 0}}}}
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.WriteShareGroupStateResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "DeleteShareGroupState", acls: cluster, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteShareGroupStateRequest()
				req.GroupID = "sg"
				req.Topics = []kmsg.DeleteShareGroupStateRequestTopic{{TopicID: topicID(),
					Partitions: []kmsg.DeleteShareGroupStateRequestTopicPartition{{Partition: 0}}}}
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.DeleteShareGroupStateResponse).Topics[0].Partitions[0].ErrorCode
			}},
		{name: "ReadShareGroupStateSummary", acls: cluster, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrReadShareGroupStateSummaryRequest()
				req.GroupID = "sg"
				req.Topics = []kmsg.ReadShareGroupStateSummaryRequestTopic{{TopicID: topicID(),
					Partitions: []kmsg.ReadShareGroupStateSummaryRequestTopicPartition{{Partition: 0}}}}
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.ReadShareGroupStateSummaryResponse).Topics[0].Partitions[0].ErrorCode
			}},
	}
}
