package api

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// aclShareOffsetCases are the share group offset admin APIs (90–92), with
// Kafka's checks: DESCRIBE, READ and DELETE on the group. This harness
// runs no share coordinator, which answers before any topic is looked at,
// so the topic checks are tested in internal/node (share_admin_test.go).
func aclShareOffsetCases() []aclCase {
	group := func(op auth.Operation) auth.Binding { return aclAllow(auth.ResourceGroup, "sg", op) }
	describe := func() kmsg.Request {
		req := kmsg.NewPtrDescribeShareGroupOffsetsRequest()
		rg := kmsg.NewDescribeShareGroupOffsetsRequestGroup()
		rg.GroupID = "sg"
		rg.Topics = []kmsg.DescribeShareGroupOffsetsRequestGroupTopic{{Topic: "t", Partitions: []int32{0}}}
		req.Groups = append(req.Groups, rg)
		return req
	}
	alter := func() kmsg.Request {
		req := kmsg.NewPtrAlterShareGroupOffsetsRequest()
		req.GroupID = "sg"
		req.Topics = []kmsg.AlterShareGroupOffsetsRequestTopic{{Topic: "t",
			Partitions: []kmsg.AlterShareGroupOffsetsRequestTopicPartition{{Partition: 0, StartOffset: 0}}}}
		return req
	}
	deleteOffsets := func() kmsg.Request {
		req := kmsg.NewPtrDeleteShareGroupOffsetsRequest()
		req.GroupID = "sg"
		req.Topics = []kmsg.DeleteShareGroupOffsetsRequestTopic{{Topic: "t"}}
		return req
	}
	return []aclCase{
		{name: "DescribeShareGroupOffsets group", acls: []auth.Binding{group(auth.OpDescribe), aclTopic(auth.OpDescribe)}, denied: groupAuthz,
			req: describe, code: func(r kmsg.Response) int16 { return r.(*kmsg.DescribeShareGroupOffsetsResponse).Groups[0].ErrorCode }},
		{name: "AlterShareGroupOffsets group", acls: []auth.Binding{group(auth.OpRead), aclTopic(auth.OpRead)}, denied: groupAuthz,
			req: alter, code: func(r kmsg.Response) int16 { return r.(*kmsg.AlterShareGroupOffsetsResponse).ErrorCode }},
		{name: "DeleteShareGroupOffsets group", acls: []auth.Binding{group(auth.OpDelete), aclTopic(auth.OpRead)}, denied: groupAuthz,
			req: deleteOffsets, code: func(r kmsg.Response) int16 { return r.(*kmsg.DeleteShareGroupOffsetsResponse).ErrorCode }},
	}
}
