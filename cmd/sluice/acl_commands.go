package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// aclFailure is an ACL (or delete filter) the broker refused, as --json
// reports it next to what succeeded.
type aclFailure struct {
	ACL       aclEntry `json:"acl"`
	Error     string   `json:"error"`
	ErrorCode string   `json:"error_code,omitempty"`
	err       error
}

func failedACL(acl aclEntry, err error) aclFailure {
	return aclFailure{ACL: acl, Error: err.Error(), ErrorCode: kafkaErrorCode(err), err: err}
}

// printACLChanges prints what create or delete did: {"<verb>": [...],
// "errors": [...]} with --json (both lists always present), one line per
// ACL otherwise. It returns the failures, joined, for stderr and the exit
// code.
func printACLChanges(cmd *cobra.Command, asJSON bool, verb string, done []aclEntry, failures []aclFailure) error {
	if asJSON {
		doc := map[string]any{verb: done, "errors": failures}
		if err := printJSON(cmd.OutOrStdout(), doc); err != nil {
			return err
		}
	} else {
		for _, a := range done {
			fmt.Fprintf(cmd.OutOrStdout(), "%s ACL %s %s %s on %s %s (%s) from %s\n", verb, a.Permission, a.Principal,
				a.Operation, a.ResourceType, a.ResourceName, a.PatternType, a.Host)
		}
	}
	errs := make([]error, len(failures))
	for i, f := range failures {
		errs[i] = f.err
	}
	return errors.Join(errs...)
}

func newACLCreateCmd(e *clientEnv) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Allow or deny principals operations on resources",
		Example: "  sluice acl create --allow-principal User:alice --operation read --topic orders --group billing\n" +
			"  sluice acl create --deny-principal User:mallory --operation all --topic '*'",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			b, err := f.createBuilder()
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			results, err := adm.CreateACLs(ctx, b)
			if err != nil {
				return fmt.Errorf("create ACLs: %w", err)
			}
			created := []aclEntry{}
			failures := []aclFailure{}
			for _, r := range results {
				a := newACLEntry(r.Type, r.Name, r.Pattern, r.Principal, r.Host, r.Operation, r.Permission)
				if r.Err != nil {
					failures = append(failures, failedACL(a, aclError("create ACL", r.Err, r.ErrMessage)))
					continue
				}
				created = append(created, a)
			}
			return printACLChanges(cmd, asJSON, "created", created, failures)
		},
	}
	f.registerPrincipals(cmd.Flags())
	f.registerResources(cmd.Flags(), "literal", "literal (the exact name, or * for all) or prefixed (every name starting with it)")
	return cmd
}

// createBuilder checks the flags of `acl create` and builds the ACLs:
// every principal × host × operation × resource.
func (f *aclFlags) createBuilder() (*kadm.ACLBuilder, error) {
	if len(f.allow)+len(f.deny) == 0 {
		return nil, usageErrorf("give --allow-principal or --deny-principal")
	}
	if err := checkPrincipals("--allow-principal", f.allow); err != nil {
		return nil, err
	}
	if err := checkPrincipals("--deny-principal", f.deny); err != nil {
		return nil, err
	}
	if len(f.operations) == 0 {
		return nil, usageErrorf("give --operation (READ, WRITE, ALL, ...)")
	}
	pattern, err := f.pattern()
	if err != nil {
		return nil, err
	}
	if pattern != kadm.ACLPatternLiteral && pattern != kadm.ACLPatternPrefixed {
		return nil, usageErrorf("--resource-pattern-type %s: an ACL is literal or prefixed", f.patternType)
	}
	ops, err := f.ops()
	if err != nil {
		return nil, err
	}
	b := kadm.NewACLs()
	if !f.resources(b) {
		return nil, usageErrorf("name a resource: --topic, --group, --transactional-id or --cluster")
	}
	allowHosts, denyHosts := f.principalHosts()
	b.ResourcePatternType(pattern).Operations(ops...)
	if len(f.allow) > 0 {
		b.MaybeAllow(f.allow...).AllowHosts(allowHosts...)
	}
	if len(f.deny) > 0 {
		b.MaybeDeny(f.deny...).DenyHosts(denyHosts...)
	}
	return b, b.ValidateCreate()
}

func newACLListCmd(e *clientEnv) *cobra.Command {
	var f aclFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List ACLs, all or those matching the flags",
		Example: "  sluice acl list\n  sluice acl list --topic orders --resource-pattern-type match\n  sluice acl list --principal User:alice --json",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			b, err := f.filterBuilder(f.principals, f.principals)
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			results, err := adm.DescribeACLs(ctx, b)
			if err != nil {
				return fmt.Errorf("list ACLs: %w", err)
			}
			entries := []aclEntry{}
			for _, r := range results {
				if r.Err != nil {
					return aclError("list ACLs", r.Err, r.ErrMessage)
				}
				for _, d := range r.Described {
					entries = append(entries, newACLEntry(d.Type, d.Name, d.Pattern, d.Principal, d.Host, d.Operation, d.Permission))
				}
			}
			return printACLs(cmd, asJSON, entries)
		},
	}
	cmd.Flags().StringArrayVar(&f.principals, "principal", nil, "only ACLs of this principal, allowed or denied (repeatable)")
	f.registerResources(cmd.Flags(), "any", "any (every pattern type), match (every ACL that applies to the named resources), literal or prefixed")
	return cmd
}

func newACLDeleteCmd(e *clientEnv) *cobra.Command {
	var f aclFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete the ACLs matching the flags",
		Example: "  sluice acl delete --allow-principal User:alice --topic orders\n" +
			"  sluice acl delete --topic logs- --resource-pattern-type prefixed\n  sluice acl delete --all",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			if err := f.checkDelete(all); err != nil {
				return err
			}
			b, err := f.filterBuilder(f.allow, f.deny)
			if err != nil {
				return err
			}
			ctx, adm, done, err := e.adminSession(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			results, err := adm.DeleteACLs(ctx, b)
			if err != nil {
				return fmt.Errorf("delete ACLs: %w", err)
			}
			deleted := []aclEntry{}
			failures := []aclFailure{}
			for _, r := range results {
				if r.Err != nil {
					filter := newACLEntry(r.Type, derefOr(r.Name), r.Pattern, derefOr(r.Principal), derefOr(r.Host), r.Operation, r.Permission)
					failures = append(failures, failedACL(filter, aclError("delete ACLs", r.Err, r.ErrMessage)))
					continue
				}
				for _, d := range r.Deleted {
					deleted = append(deleted, newACLEntry(d.Type, d.Name, d.Pattern, d.Principal, d.Host, d.Operation, d.Permission))
				}
			}
			return printACLChanges(cmd, asJSON, "deleted", deleted, failures)
		},
	}
	f.registerPrincipals(cmd.Flags())
	f.registerResources(cmd.Flags(), "literal", "literal, prefixed, match (every ACL that applies to the named resources) or any")
	cmd.Flags().BoolVar(&all, "all", false, "delete every ACL of the cluster (no other filter may be given)")
	return cmd
}

// checkDelete refuses a delete that names nothing, so a forgotten flag
// cannot remove every ACL; --all says so on purpose.
func (f *aclFlags) checkDelete(all bool) error {
	named := len(f.topics)+len(f.groups)+len(f.transactionalIDs)+len(f.allow)+len(f.deny) > 0 || f.cluster
	switch {
	case all && named:
		return usageErrorf("--all deletes every ACL: give it alone")
	case all:
		f.patternType = "any"
	case !named:
		return usageErrorf("name what to delete (--topic, --group, --transactional-id, --cluster, --allow-principal, --deny-principal), or give --all")
	}
	if err := checkPrincipals("--allow-principal", f.allow); err != nil {
		return err
	}
	return checkPrincipals("--deny-principal", f.deny)
}

// filterBuilder builds the filters of list and delete: the resources
// named (every resource when none is), the principals given for each
// permission (both permissions, any principal, when none is), the hosts,
// the operations (any when none is) and the pattern type.
func (f *aclFlags) filterBuilder(allow, deny []string) (*kadm.ACLBuilder, error) {
	pattern, err := f.pattern()
	if err != nil {
		return nil, err
	}
	ops, err := f.ops(kadm.OpAny)
	if err != nil {
		return nil, err
	}
	b := kadm.NewACLs().ResourcePatternType(pattern).Operations(ops...)
	if !f.resources(b) {
		b.AnyResource()
	}
	allowHosts, denyHosts := f.hosts, f.hosts
	if len(f.allowHosts) > 0 {
		allowHosts = f.allowHosts
	}
	if len(f.denyHost) > 0 {
		denyHosts = f.denyHost
	}
	switch {
	case len(allow)+len(deny) == 0:
		b.Allow().AllowHosts(allowHosts...).Deny().DenyHosts(denyHosts...)
	default:
		b.MaybeAllow(allow...).MaybeDeny(deny...)
		if len(allow) > 0 {
			b.AllowHosts(allowHosts...)
		}
		if len(deny) > 0 {
			b.DenyHosts(denyHosts...)
		}
	}
	return b, b.ValidateFilter()
}

func derefOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
