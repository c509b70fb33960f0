package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/auth"
)

// The acl commands speak kafka-acls' language: the same flag names, the
// same resource, operation and pattern names (any case, '-' for '_'), and
// the same defaults: every host, a LITERAL pattern to create, any pattern
// to list. They need a broker with an authorizer (authorizer.class.name);
// without one the broker answers SECURITY_DISABLED.

func newACLCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Create, list and delete ACLs (the broker needs authorizer.class.name)",
		Example: "  sluice acl create --allow-principal User:alice --operation read --operation describe --topic orders\n" +
			"  sluice acl create --allow-principal User:app --operation write --topic logs- --resource-pattern-type prefixed\n" +
			"  sluice acl list --principal User:alice --json\n" +
			"  sluice acl delete --allow-principal User:alice --topic orders",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	e := newClientEnv(cmd)
	cmd.AddCommand(newACLCreateCmd(e), newACLListCmd(e), newACLDeleteCmd(e))
	return cmd
}

// aclFlags are the flags the three commands share: who, from where, what,
// on which resources.
type aclFlags struct {
	allow, deny          []string
	allowHosts, denyHost []string
	hosts                []string
	principals           []string // list: either permission
	operations           []string
	topics, groups       []string
	transactionalIDs     []string
	cluster              bool
	patternType          string
}

func (f *aclFlags) registerResources(fs *pflag.FlagSet, patternDefault, patternHelp string) {
	fs.StringArrayVar(&f.topics, "topic", nil, "topic name, or prefix with --resource-pattern-type prefixed, or * for every topic (repeatable)")
	fs.StringArrayVar(&f.groups, "group", nil, "consumer group id, prefix or * (repeatable)")
	fs.StringArrayVar(&f.transactionalIDs, "transactional-id", nil, "transactional id, prefix or * (repeatable)")
	fs.BoolVar(&f.cluster, "cluster", false, "the cluster resource (kafka-cluster)")
	fs.StringVar(&f.patternType, "resource-pattern-type", patternDefault, patternHelp)
	fs.StringArrayVar(&f.operations, "operation", nil, "ALL, READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, "+
		"DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (repeatable)")
}

func (f *aclFlags) registerPrincipals(fs *pflag.FlagSet) {
	fs.StringArrayVar(&f.allow, "allow-principal", nil, "principal to allow, as Type:name, e.g. User:alice; User:* is everyone (repeatable)")
	fs.StringArrayVar(&f.deny, "deny-principal", nil, "principal to deny, as Type:name (repeatable)")
	fs.StringArrayVar(&f.allowHosts, "allow-host", nil, "host (IP address) the allowed principals may connect from (default every host, *)")
	fs.StringArrayVar(&f.denyHost, "deny-host", nil, "host the denied principals are denied from (default every host, *)")
	fs.StringArrayVar(&f.hosts, "host", nil, "host for both --allow-principal and --deny-principal")
}

// resources adds the chosen resources to b; false when none was chosen.
func (f *aclFlags) resources(b *kadm.ACLBuilder) bool {
	b.MaybeTopics(f.topics...).MaybeGroups(f.groups...).MaybeTransactionalIDs(f.transactionalIDs...).MaybeClusters(f.cluster)
	return len(f.topics)+len(f.groups)+len(f.transactionalIDs) > 0 || f.cluster
}

// pattern parses --resource-pattern-type.
func (f *aclFlags) pattern() (kadm.ACLPattern, error) {
	pt, err := auth.ParsePatternType(f.patternType)
	if err != nil {
		return 0, usageErrorf("--resource-pattern-type: %v", errors.Unwrap(err))
	}
	return kadm.ACLPattern(pt), nil
}

// ops parses --operation; none gives the default.
func (f *aclFlags) ops(none ...kadm.ACLOperation) ([]kadm.ACLOperation, error) {
	if len(f.operations) == 0 {
		return none, nil
	}
	var out []kadm.ACLOperation
	for _, s := range f.operations {
		op, err := auth.ParseOperation(s)
		if err != nil {
			return nil, usageErrorf("--operation: %v", errors.Unwrap(err))
		}
		out = append(out, kadm.ACLOperation(op))
	}
	return out, nil
}

// principalHosts resolves the hosts of allowed and denied principals:
// --allow-host/--deny-host, else --host, else every host.
func (f *aclFlags) principalHosts() (allowHosts, denyHosts []string) {
	pick := func(specific []string) []string {
		switch {
		case len(specific) > 0:
			return specific
		case len(f.hosts) > 0:
			return f.hosts
		}
		return []string{auth.WildcardHost}
	}
	return pick(f.allowHosts), pick(f.denyHost)
}

// aclEntry is one ACL as the commands print it.
type aclEntry struct {
	ResourceType string `json:"resource_type"`
	ResourceName string `json:"resource_name"`
	PatternType  string `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

func newACLEntry(typ kmsg.ACLResourceType, name string, pattern kadm.ACLPattern, principal, host string,
	op kadm.ACLOperation, perm kmsg.ACLPermissionType) aclEntry {
	return aclEntry{
		ResourceType: auth.ResourceType(typ).String(), ResourceName: name, PatternType: auth.PatternType(pattern).String(),
		Principal: principal, Host: host, Operation: auth.Operation(op).String(), Permission: auth.Permission(perm).String(),
	}
}

// printACLs prints entries as a table, or as JSON.
func printACLs(cmd *cobra.Command, asJSON bool, entries []aclEntry) error {
	if asJSON {
		return printJSON(cmd.OutOrStdout(), entries)
	}
	rows := make([][]string, 0, len(entries))
	for _, a := range entries {
		rows = append(rows, []string{a.ResourceType, a.ResourceName, a.PatternType, a.Principal, a.Host, a.Operation, a.Permission})
	}
	return printTable(cmd.OutOrStdout(), []string{"RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"}, rows)
}

// checkPrincipals refuses a principal without a type before the broker
// does, with the flag's name.
func checkPrincipals(flag string, principals []string) error {
	for _, p := range principals {
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return usageErrorf("%s %q: want Type:name, e.g. User:alice", flag, p)
		}
	}
	return nil
}

// aclError words a per-ACL or per-filter Kafka error.
func aclError(what string, err error, message string) error {
	if message != "" && !strings.Contains(err.Error(), message) {
		return fmt.Errorf("%s: %w (%s)", what, err, message)
	}
	return fmt.Errorf("%s: %w", what, err)
}
