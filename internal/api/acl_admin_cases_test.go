package api

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/metadata"
)

// aclAdminCases are the matrix cases of the admin APIs (keys 29 and up).
//
// long: a table, one entry per API and resource, as aclMatrixCases.
func aclAdminCases(t *testing.T, h *harness) []aclCase {
	topicConfig := func(op auth.Operation) auth.Binding { return aclTopic(op) }
	return []aclCase{
		{name: "DescribeAcls", acls: []auth.Binding{aclCluster(auth.OpDescribe)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeACLsRequest()
				req.Version = 3
				req.ResourceType, req.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
				req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeACLsResponse).ErrorCode }},
		{name: "CreateAcls", acls: []auth.Binding{aclCluster(auth.OpAlter)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrCreateACLsRequest()
				req.Version = 3
				c := kmsg.NewCreateACLsRequestCreation()
				c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "created", kmsg.ACLResourcePatternTypeLiteral
				c.Principal, c.Host, c.Operation, c.PermissionType = "User:bob", "*", kmsg.ACLOperationRead, kmsg.ACLPermissionTypeAllow
				req.Creations = append(req.Creations, c)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreateACLsResponse).Results[0].ErrorCode },
			effect: func() bool {
				for _, b := range h.cp.Image().ACLBindings() {
					if b.ResourceName == "created" {
						return true
					}
				}
				return false
			}},
		{name: "DeleteAcls", acls: []auth.Binding{aclCluster(auth.OpAlter)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteACLsRequest()
				req.Version = 3
				f := kmsg.NewDeleteACLsRequestFilter()
				f.ResourceType, f.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeAny
				f.ResourceName = aclStr("nothing")
				f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
				req.Filters = append(req.Filters, f)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteACLsResponse).Results[0].ErrorCode }},
		{name: "DescribeConfigs topic", acls: []auth.Binding{topicConfig(auth.OpDescribeConfigs)}, denied: topicAuthz,
			req: func() kmsg.Request {
				return aclDescribeConfigs(kmsg.ConfigResourceTypeTopic, "t")
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode }},
		{name: "DescribeConfigs broker", acls: []auth.Binding{aclCluster(auth.OpDescribeConfigs)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				return aclDescribeConfigs(kmsg.ConfigResourceTypeBroker, "1")
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeConfigsResponse).Resources[0].ErrorCode }},
		{name: "AlterConfigs topic", acls: []auth.Binding{topicConfig(auth.OpAlterConfigs)}, denied: topicAuthz,
			req: func() kmsg.Request {
				return aclAlterConfigs(kmsg.ConfigResourceTypeTopic, "t", "retention.ms", "3600000")
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode },
			effect: func() bool {
				return h.cp.Image().Configs(metadata.ConfigResourceTopic, "t")["retention.ms"] == "3600000"
			}},
		{name: "AlterConfigs broker", acls: []auth.Binding{aclCluster(auth.OpAlterConfigs)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				return aclAlterConfigs(kmsg.ConfigResourceTypeBroker, "", "log.retention.ms", "7200000")
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterConfigsResponse).Resources[0].ErrorCode },
			effect: func() bool {
				return h.cp.Image().Configs(metadata.ConfigResourceBroker, "")["log.retention.ms"] == "7200000"
			}},
		{name: "DescribeLogDirs", acls: []auth.Binding{aclCluster(auth.OpDescribe)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeLogDirsRequest()
				req.Version = 4
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeLogDirsResponse).ErrorCode }},
		{name: "CreatePartitions", acls: []auth.Binding{aclTopic(auth.OpAlter)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrCreatePartitionsRequest()
				req.Version, req.TimeoutMillis = 3, 10_000
				rt := kmsg.NewCreatePartitionsRequestTopic()
				rt.Topic, rt.Count = "t", 3
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.CreatePartitionsResponse).Topics[0].ErrorCode },
			effect: func() bool {
				tp, ok := h.cp.Image().Topic("t")
				return ok && len(tp.Partitions) == 3
			}},
		{name: "DeleteGroups", acls: []auth.Binding{aclAllow(auth.ResourceGroup, "gone", auth.OpDelete)}, denied: groupAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDeleteGroupsRequest()
				req.Version, req.Groups = 2, []string{"gone"}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode }},
		{name: "ElectLeaders", acls: []auth.Binding{aclCluster(auth.OpAlter)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrElectLeadersRequest()
				req.Version, req.TimeoutMillis = 2, 10_000
				req.Topics = []kmsg.ElectLeadersRequestTopic{{Topic: "t", Partitions: []int32{0}}}
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.ElectLeadersResponse).ErrorCode }},
		{name: "IncrementalAlterConfigs topic", acls: []auth.Binding{topicConfig(auth.OpAlterConfigs)}, denied: topicAuthz,
			req: func() kmsg.Request {
				return aclIncrementalAlter(kmsg.ConfigResourceTypeTopic, "t", "segment.ms", "7200000")
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode },
			effect: func() bool {
				return h.cp.Image().Configs(metadata.ConfigResourceTopic, "t")["segment.ms"] == "7200000"
			}},
		{name: "IncrementalAlterConfigs broker", acls: []auth.Binding{aclCluster(auth.OpAlterConfigs)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				return aclIncrementalAlter(kmsg.ConfigResourceTypeBroker, "", "log.segment.bytes", "2097152")
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.IncrementalAlterConfigsResponse).Resources[0].ErrorCode },
			effect: func() bool {
				return h.cp.Image().Configs(metadata.ConfigResourceBroker, "")["log.segment.bytes"] == "2097152"
			}},
		{name: "OffsetDelete group", acls: []auth.Binding{aclGroup(auth.OpDelete), aclTopic(auth.OpRead)}, denied: groupAuthz,
			req:  func() kmsg.Request { return aclOffsetDelete() },
			code: func(r kmsg.Response) int16 { return r.(*kmsg.OffsetDeleteResponse).ErrorCode }},
		{name: "OffsetDelete topic", given: []auth.Binding{aclGroup(auth.OpDelete)}, acls: []auth.Binding{aclTopic(auth.OpRead)}, denied: topicAuthz,
			req: func() kmsg.Request { return aclOffsetDelete() },
			code: func(r kmsg.Response) int16 {
				resp := r.(*kmsg.OffsetDeleteResponse)
				if resp.ErrorCode != 0 {
					return resp.ErrorCode
				}
				return resp.Topics[0].Partitions[0].ErrorCode
			}},
		{name: "DescribeClientQuotas", acls: []auth.Binding{aclCluster(auth.OpDescribeConfigs)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeClientQuotasRequest()
				req.Version = 1
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeClientQuotasResponse).ErrorCode }},
		{name: "AlterClientQuotas", acls: []auth.Binding{aclCluster(auth.OpAlterConfigs)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrAlterClientQuotasRequest()
				req.Version = 1
				entry := kmsg.NewAlterClientQuotasRequestEntry()
				entity := kmsg.NewAlterClientQuotasRequestEntryEntity()
				entity.Type, entity.Name = "client-id", aclStr("quoted")
				op := kmsg.NewAlterClientQuotasRequestEntryOp()
				op.Key, op.Value = "producer_byte_rate", 1048576
				entry.Entity, entry.Ops = append(entry.Entity, entity), append(entry.Ops, op)
				req.Entries = append(req.Entries, entry)
				return req
			},
			code:   func(r kmsg.Response) int16 { return r.(*kmsg.AlterClientQuotasResponse).Entries[0].ErrorCode },
			effect: func() bool { return len(h.cp.Image().AllClientQuotas()) > 0 }},
		{name: "DescribeUserScramCredentials", acls: []auth.Binding{aclCluster(auth.OpDescribe)}, denied: clusterAuthz,
			req:  func() kmsg.Request { return kmsg.NewPtrDescribeUserSCRAMCredentialsRequest() },
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeUserSCRAMCredentialsResponse).ErrorCode }},
		{name: "AlterUserScramCredentials", acls: []auth.Binding{aclCluster(auth.OpAlter)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
				up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
				up.Name, up.Mechanism, up.Iterations = "carol", 1, 4096
				up.Salt, up.SaltedPassword = []byte("0123456789abcdef"), make([]byte, 32)
				req.Upsertions = append(req.Upsertions, up)
				return req
			},
			code:   func(r kmsg.Response) int16 { return r.(*kmsg.AlterUserSCRAMCredentialsResponse).Results[0].ErrorCode },
			effect: func() bool { return len(h.cp.Image().ScramUsers()) > 0 }},
		{name: "DescribeQuorum", acls: []auth.Binding{aclCluster(auth.OpDescribe)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeQuorumRequest()
				req.Version = 2
				rt := kmsg.NewDescribeQuorumRequestTopic()
				rt.Topic = adminMetadataTopic
				rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{{Partition: 0}}
				req.Topics = append(req.Topics, rt)
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeQuorumResponse).ErrorCode }},
		{name: "DescribeCluster", acls: []auth.Binding{aclCluster(auth.OpDescribe)}, denied: clusterAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeClusterRequest()
				req.Version = 1
				return req
			},
			code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeClusterResponse).ErrorCode }},
		{name: "DescribeProducers", acls: []auth.Binding{aclTopic(auth.OpRead)}, denied: topicAuthz,
			req: func() kmsg.Request {
				req := kmsg.NewPtrDescribeProducersRequest()
				req.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "t", Partitions: []int32{0}}}
				return req
			},
			code: func(r kmsg.Response) int16 {
				return r.(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode
			}},
	}
}

func aclDescribeConfigs(typ kmsg.ConfigResourceType, name string) *kmsg.DescribeConfigsRequest {
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	res := kmsg.NewDescribeConfigsRequestResource()
	res.ResourceType, res.ResourceName = typ, name
	req.Resources = append(req.Resources, res)
	return req
}

func aclAlterConfigs(typ kmsg.ConfigResourceType, name, key, value string) *kmsg.AlterConfigsRequest {
	req := kmsg.NewPtrAlterConfigsRequest()
	req.Version = 2
	res := kmsg.NewAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = typ, name
	res.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: key, Value: aclStr(value)}}
	req.Resources = append(req.Resources, res)
	return req
}

func aclIncrementalAlter(typ kmsg.ConfigResourceType, name, key, value string) *kmsg.IncrementalAlterConfigsRequest {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.Version = 1
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType, res.ResourceName = typ, name
	res.Configs = []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: key, Op: kmsg.IncrementalAlterConfigOpSet, Value: aclStr(value)}}
	req.Resources = append(req.Resources, res)
	return req
}

func aclOffsetDelete() *kmsg.OffsetDeleteRequest {
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "g"
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = "t"
	rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 1}}
	req.Topics = append(req.Topics, rt)
	return req
}
