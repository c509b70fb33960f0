package auth

import (
	"errors"
	"fmt"
	"strings"
)

// The enums below carry Kafka's numbering (org.apache.kafka.common.acl and
// .resource), because the same numbers travel in DescribeAcls, CreateAcls
// and DeleteAcls and are stored in the metadata log: they must not change.

// ResourceType is the kind of resource an ACL protects.
type ResourceType int8

const (
	ResourceUnknown         ResourceType = 0
	ResourceAny             ResourceType = 1 // filters only
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7
)

// ClusterName is the name of the one cluster resource, as Kafka names it.
const ClusterName = "kafka-cluster"

// Wildcard as a resource name (with a LITERAL pattern) matches every
// resource of the type; as a principal, every principal; as a host, every
// host.
const (
	WildcardResource  = "*"
	WildcardPrincipal = "User:*"
	WildcardHost      = "*"
)

// PatternType says how an ACL's resource name is matched.
type PatternType int8

const (
	PatternUnknown  PatternType = 0
	PatternAny      PatternType = 1 // filters only: any pattern type, names compared exactly
	PatternMatch    PatternType = 2 // filters only: every ACL that would apply to the name
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

// Operation is what a request does to a resource.
type Operation int8

const (
	OpUnknown         Operation = 0
	OpAny             Operation = 1 // filters only
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13
	OpDescribeTokens  Operation = 14
)

// Permission says whether an ACL allows or denies.
type Permission int8

const (
	PermissionUnknown Permission = 0
	PermissionAny     Permission = 1 // filters only
	PermissionDeny    Permission = 2
	PermissionAllow   Permission = 3
)

var resourceNames = []string{"UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", "DELEGATION_TOKEN", "USER"}
var patternNames = []string{"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"}
var operationNames = []string{"UNKNOWN", "ANY", "ALL", "READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
	"CLUSTER_ACTION", "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE", "CREATE_TOKENS", "DESCRIBE_TOKENS"}
var permissionNames = []string{"UNKNOWN", "ANY", "DENY", "ALLOW"}

func enumName(names []string, v int8) string {
	if v >= 0 && int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("UNKNOWN(%d)", v)
}

// parseEnum accepts Kafka's names in any case, with '-' for '_' as the
// Kafka tools accept them (--resource-pattern-type prefixed).
func parseEnum(names []string, what, s string) (int8, error) {
	want := strings.ReplaceAll(strings.ToUpper(strings.TrimSpace(s)), "-", "_")
	for i, n := range names {
		if i > 0 && n == want { // 0 is UNKNOWN, never a valid choice
			return int8(i), nil
		}
	}
	return 0, fmt.Errorf("%s %q: want one of %s: %w", what, s, strings.Join(names[1:], ", "), ErrInvalidACL)
}

func (t ResourceType) String() string { return enumName(resourceNames, int8(t)) }
func (p PatternType) String() string  { return enumName(patternNames, int8(p)) }
func (o Operation) String() string    { return enumName(operationNames, int8(o)) }
func (p Permission) String() string   { return enumName(permissionNames, int8(p)) }

// ParseResourceType parses a resource type name (TOPIC, transactional-id).
func ParseResourceType(s string) (ResourceType, error) {
	v, err := parseEnum(resourceNames, "resource type", s)
	return ResourceType(v), err
}

// ParsePatternType parses a pattern type name (LITERAL, prefixed, MATCH).
func ParsePatternType(s string) (PatternType, error) {
	v, err := parseEnum(patternNames, "pattern type", s)
	return PatternType(v), err
}

// ParseOperation parses an operation name (READ, describe-configs).
func ParseOperation(s string) (Operation, error) {
	v, err := parseEnum(operationNames, "operation", s)
	return Operation(v), err
}

// ParsePermission parses ALLOW or DENY.
func ParsePermission(s string) (Permission, error) {
	v, err := parseEnum(permissionNames, "permission", s)
	return Permission(v), err
}

// ErrInvalidACL is a binding or filter that no ACL can be or match: an
// unknown or filter-only enum in a binding, a principal without a type, a
// cluster resource not named kafka-cluster.
var ErrInvalidACL = errors.New("invalid ACL")

// Binding is one ACL: Principal may do (or, with PermissionDeny, may not
// do) Operation on the resources the pattern names, from Host.
type Binding struct {
	ResourceType ResourceType
	ResourceName string
	PatternType  PatternType
	Principal    string // "User:alice", or WildcardPrincipal
	Host         string // an IP address, or WildcardHost
	Operation    Operation
	Permission   Permission
}

func (b Binding) String() string {
	return fmt.Sprintf("%s:%s:%s %s %s %s from %s", b.ResourceType, b.PatternType, b.ResourceName,
		b.Permission, b.Principal, b.Operation, b.Host)
}

// Validate reports why b cannot be stored, as Kafka's CreateAcls checks it.
func (b Binding) Validate() error {
	switch {
	case b.ResourceType < ResourceTopic || b.ResourceType > ResourceUser:
		return fmt.Errorf("resource type %s: %w", b.ResourceType, ErrInvalidACL)
	case b.PatternType != PatternLiteral && b.PatternType != PatternPrefixed:
		return fmt.Errorf("pattern type %s: want LITERAL or PREFIXED: %w", b.PatternType, ErrInvalidACL)
	case b.Operation < OpAll || b.Operation > OpDescribeTokens:
		return fmt.Errorf("operation %s: %w", b.Operation, ErrInvalidACL)
	case b.Permission != PermissionAllow && b.Permission != PermissionDeny:
		return fmt.Errorf("permission %s: %w", b.Permission, ErrInvalidACL)
	case b.ResourceName == "":
		return fmt.Errorf("empty resource name: %w", ErrInvalidACL)
	case b.ResourceType == ResourceCluster && b.ResourceName != ClusterName:
		// Kafka refuses any other name: an ACL on "kafka" would silently
		// never match.
		return fmt.Errorf("cluster resource %q: the cluster is named %q: %w", b.ResourceName, ClusterName, ErrInvalidACL)
	case b.Host == "":
		return fmt.Errorf("empty host: %w", ErrInvalidACL)
	}
	if typ, name, ok := strings.Cut(b.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Errorf("principal %q: want Type:name, e.g. User:alice: %w", b.Principal, ErrInvalidACL)
	}
	return nil
}

// Filter selects bindings (DescribeAcls, DeleteAcls). The enums may be
// their ANY values; an empty ResourceName, Principal or Host matches any
// (Kafka's null).
type Filter struct {
	ResourceType ResourceType
	ResourceName string
	PatternType  PatternType
	Principal    string
	Host         string
	Operation    Operation
	Permission   Permission
}

// Validate reports why f can match nothing meaningful, as Kafka refuses
// such filters rather than answer them empty.
func (f Filter) Validate() error {
	switch {
	case f.ResourceType < ResourceAny || f.ResourceType > ResourceUser:
		return fmt.Errorf("resource type %s: %w", f.ResourceType, ErrInvalidACL)
	case f.PatternType < PatternAny || f.PatternType > PatternPrefixed:
		return fmt.Errorf("pattern type %s: %w", f.PatternType, ErrInvalidACL)
	case f.Operation < OpAny || f.Operation > OpDescribeTokens:
		return fmt.Errorf("operation %s: %w", f.Operation, ErrInvalidACL)
	case f.Permission < PermissionAny || f.Permission > PermissionAllow:
		return fmt.Errorf("permission %s: %w", f.Permission, ErrInvalidACL)
	}
	return nil
}

// Matches reports whether the filter selects b, with Kafka's rules: a
// MATCH filter with a name selects every binding that would apply to a
// resource of that name (the literal name, the literal wildcard, and every
// prefix of it); ANY and the other pattern types compare names exactly.
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if !f.matchesPattern(b) {
		return false
	}
	return (f.Principal == "" || f.Principal == b.Principal) &&
		(f.Host == "" || f.Host == b.Host) &&
		(f.Operation == OpAny || f.Operation == b.Operation) &&
		(f.Permission == PermissionAny || f.Permission == b.Permission)
}

func (f Filter) matchesPattern(b Binding) bool {
	switch f.PatternType {
	case PatternAny:
		return f.ResourceName == "" || f.ResourceName == b.ResourceName
	case PatternMatch:
		if f.ResourceName == "" {
			return true
		}
		switch b.PatternType {
		case PatternLiteral:
			return b.ResourceName == f.ResourceName || b.ResourceName == WildcardResource
		case PatternPrefixed:
			return strings.HasPrefix(f.ResourceName, b.ResourceName)
		}
		return false
	default:
		return f.PatternType == b.PatternType && (f.ResourceName == "" || f.ResourceName == b.ResourceName)
	}
}

// ParseSuperUsers splits super.users: principals separated by semicolons,
// as Kafka writes them (User:admin;User:ops), blanks ignored.
func ParseSuperUsers(s string) []string {
	var users []string
	for _, u := range strings.Split(s, ";") {
		if u = strings.TrimSpace(u); u != "" {
			users = append(users, u)
		}
	}
	return users
}
