package api

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// audit writes one log line per resource an admin request changed or
// tried to change: who asked (client address, client id and principal), what
// (action, resource, the change), and the result (ok or the Kafka error).
// It reads the request and its response after the handler, so the
// handlers stay free of logging and every admin API is covered in one
// place. Validate-only requests change nothing and are not logged.
//
// long: a dispatch switch, one case per audited admin API.
//
// Not covered: an offset reset by an admin tool arrives as an OffsetCommit
// with no generation, which a consumer outside any group sends too, so it
// cannot be told apart from ordinary commits and is not logged.
func (b *Broker) audit(r *Request, resp kmsg.Response) {
	b.auditACLs(r, resp)
	switch req := r.Body.(type) {
	case *kmsg.CreateTopicsRequest:
		if req.ValidateOnly {
			return
		}
		for _, t := range resp.(*kmsg.CreateTopicsResponse).Topics {
			b.auditLine(r, "create_topic", "topic", t.Topic, t.ErrorCode, t.ErrorMessage,
				"partitions", t.NumPartitions, "replication_factor", t.ReplicationFactor)
		}
	case *kmsg.DeleteTopicsRequest:
		for _, t := range resp.(*kmsg.DeleteTopicsResponse).Topics {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			b.auditLine(r, "delete_topic", "topic", name, t.ErrorCode, t.ErrorMessage)
		}
	case *kmsg.CreatePartitionsRequest:
		if req.ValidateOnly {
			return
		}
		counts := map[string]int32{}
		for _, t := range req.Topics {
			counts[t.Topic] = t.Count
		}
		for _, t := range resp.(*kmsg.CreatePartitionsResponse).Topics {
			b.auditLine(r, "create_partitions", "topic", t.Topic, t.ErrorCode, t.ErrorMessage, "partitions", counts[t.Topic])
		}
	case *kmsg.DeleteRecordsRequest:
		b.auditDeleteRecords(r, req, resp.(*kmsg.DeleteRecordsResponse))
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		// Which mechanisms changed, never the salt or salted password.
		for _, res := range resp.(*kmsg.AlterUserSCRAMCredentialsResponse).Results {
			b.auditLine(r, "alter_user_scram_credentials", "user", res.User, res.ErrorCode, res.ErrorMessage)
		}
	case *kmsg.AlterConfigsRequest:
		if req.ValidateOnly {
			return
		}
		changes := map[string]string{}
		for _, res := range req.Resources {
			var parts []string
			for _, c := range res.Configs {
				parts = append(parts, c.Name+"="+valueOrNull(c.Value))
			}
			changes[res.ResourceType.String()+"/"+res.ResourceName] = strings.Join(parts, ",")
		}
		for _, res := range resp.(*kmsg.AlterConfigsResponse).Resources {
			b.auditLine(r, "alter_configs", strings.ToLower(res.ResourceType.String()), res.ResourceName, res.ErrorCode, res.ErrorMessage,
				"configs", changes[res.ResourceType.String()+"/"+res.ResourceName])
		}
	case *kmsg.IncrementalAlterConfigsRequest:
		if req.ValidateOnly {
			return
		}
		changes := map[string]string{}
		for _, res := range req.Resources {
			var parts []string
			for _, c := range res.Configs {
				parts = append(parts, fmt.Sprintf("%s %s=%s", c.Op, c.Name, valueOrNull(c.Value)))
			}
			changes[res.ResourceType.String()+"/"+res.ResourceName] = strings.Join(parts, ",")
		}
		for _, res := range resp.(*kmsg.IncrementalAlterConfigsResponse).Resources {
			b.auditLine(r, "alter_configs", strings.ToLower(res.ResourceType.String()), res.ResourceName, res.ErrorCode, res.ErrorMessage,
				"configs", changes[res.ResourceType.String()+"/"+res.ResourceName])
		}
	case *kmsg.DeleteGroupsRequest:
		for _, g := range resp.(*kmsg.DeleteGroupsResponse).Groups {
			b.auditLine(r, "delete_group", "group", g.Group, g.ErrorCode, nil)
		}
	case *kmsg.OffsetDeleteRequest:
		b.auditOffsetDelete(r, req, resp.(*kmsg.OffsetDeleteResponse))
	}
}

// auditACLs logs one line per ACL created, and per ACL a filter deleted
// (or per filter that failed); other responses log nothing here.
func (b *Broker) auditACLs(r *Request, resp kmsg.Response) {
	switch resp := resp.(type) {
	case *kmsg.CreateACLsResponse:
		req := r.Body.(*kmsg.CreateACLsRequest)
		for i, res := range resp.Results {
			c := req.Creations[i]
			bd := auth.Binding{ResourceType: auth.ResourceType(c.ResourceType), ResourceName: c.ResourceName,
				PatternType: auth.PatternType(c.ResourcePatternType), Principal: c.Principal, Host: c.Host,
				Operation: auth.Operation(c.Operation), Permission: auth.Permission(c.PermissionType)}
			b.auditLine(r, "create_acl", "acl", bd.String(), res.ErrorCode, res.ErrorMessage)
		}
	case *kmsg.DeleteACLsResponse:
		for _, res := range resp.Results {
			if res.ErrorCode != 0 {
				b.auditLine(r, "delete_acl", "acl", "", res.ErrorCode, res.ErrorMessage)
			}
			for _, m := range res.MatchingACLs {
				bd := auth.Binding{ResourceType: auth.ResourceType(m.ResourceType), ResourceName: m.ResourceName,
					PatternType: auth.PatternType(m.ResourcePatternType), Principal: m.Principal, Host: m.Host,
					Operation: auth.Operation(m.Operation), Permission: auth.Permission(m.PermissionType)}
				b.auditLine(r, "delete_acl", "acl", bd.String(), m.ErrorCode, m.ErrorMessage)
			}
		}
	}
}

func (b *Broker) auditDeleteRecords(r *Request, req *kmsg.DeleteRecordsRequest, resp *kmsg.DeleteRecordsResponse) {
	before := map[string]int64{}
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			before[fmt.Sprintf("%s-%d", t.Topic, p.Partition)] = p.Offset
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			name := fmt.Sprintf("%s-%d", t.Topic, p.Partition)
			b.auditLine(r, "delete_records", "partition", name, p.ErrorCode, nil,
				"before_offset", before[name], "low_watermark", p.LowWatermark)
		}
	}
}

// auditOffsetDelete logs one line per partition whose offset the request
// deletes (Kafka's offset reset by deletion), with the group-level error
// when the whole request failed.
func (b *Broker) auditOffsetDelete(r *Request, req *kmsg.OffsetDeleteRequest, resp *kmsg.OffsetDeleteResponse) {
	if resp.ErrorCode != 0 {
		b.auditLine(r, "delete_offsets", "group", req.Group, resp.ErrorCode, nil)
		return
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			b.auditLine(r, "delete_offsets", "group", req.Group, p.ErrorCode, nil,
				"topic", t.Topic, "partition", p.Partition)
		}
	}
}

// auditLine is one audit record. Its fields are stable names so a log
// pipeline can filter on them: audit=true, action, resource_type,
// resource, client, client_id, result (ok or the Kafka error name), and
// error (the message) when it failed.
func (b *Broker) auditLine(r *Request, action, resourceType, resource string, code int16, message *string, extra ...any) {
	attrs := []any{"audit", true, "action", action, "resource_type", resourceType, "resource", resource,
		"client", r.ClientAddr, "client_id", valueOrNull(r.Header.ClientID), "principal", r.Principal.String()}
	attrs = append(attrs, extra...)
	level := slog.LevelInfo
	if code == 0 {
		attrs = append(attrs, "result", "ok")
	} else {
		level = slog.LevelWarn
		attrs = append(attrs, "result", errorName(code))
		if message != nil {
			attrs = append(attrs, "error", *message)
		}
	}
	b.Logger.Log(context.Background(), level, "admin request", attrs...)
}

func valueOrNull(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}
