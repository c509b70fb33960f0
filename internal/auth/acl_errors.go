package auth

import "errors"

// Authorization errors. The edge maps each to its Kafka code; handlers wrap
// them with the resource, so the message says what was refused to whom.
var (
	// ErrTopicAuthorizationFailed: TOPIC_AUTHORIZATION_FAILED (29).
	ErrTopicAuthorizationFailed = errors.New("not authorized to access topic")
	// ErrGroupAuthorizationFailed: GROUP_AUTHORIZATION_FAILED (30).
	ErrGroupAuthorizationFailed = errors.New("not authorized to access group")
	// ErrClusterAuthorizationFailed: CLUSTER_AUTHORIZATION_FAILED (31).
	ErrClusterAuthorizationFailed = errors.New("not authorized on the cluster")
	// ErrTransactionalIDAuthorizationFailed:
	// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
	ErrTransactionalIDAuthorizationFailed = errors.New("not authorized to use transactional id")
	// ErrSecurityDisabled: an ACL request while no authorizer is
	// configured (authorizer.class.name empty). SECURITY_DISABLED (54).
	ErrSecurityDisabled = errors.New("no authorizer is configured (authorizer.class.name)")
)
