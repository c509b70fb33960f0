package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// `sluice quota` reads and changes client quotas, as `kafka-configs
// --entity-type users/clients/ips` and `rpk cluster quotas` do, with
// DescribeClientQuotas and AlterClientQuotas. An entity is named by
// --user, --client-id and --ip, and --default TYPE names the default
// entity of a type: `--user alice --default client-id` is alice's quota
// for each of her client ids that has none of its own.

func newQuotaCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quota",
		Short: "Describe and alter client quotas (byte rates, request time, connection rates)",
		Example: "  sluice quota describe\n" +
			"  sluice quota alter --user alice --set producer_byte_rate=1048576\n" +
			"  sluice quota alter --default client-id --set consumer_byte_rate=10485760",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	e := newClientEnv(cmd)
	cmd.AddCommand(newQuotaDescribeCmd(e), newQuotaAlterCmd(e))
	return cmd
}

// quotaEntityFlags are the flags that name an entity or a filter.
type quotaEntityFlags struct {
	user, clientID, ip string
	defaults           []string
}

func (f *quotaEntityFlags) register(cmd *cobra.Command, verb string) {
	cmd.Flags().StringVar(&f.user, "user", "", "the user (principal name, ANONYMOUS without authentication) "+verb)
	cmd.Flags().StringVar(&f.clientID, "client-id", "", "the client id "+verb)
	cmd.Flags().StringVar(&f.ip, "ip", "", "the client IP address "+verb+" (connection_creation_rate only)")
	cmd.Flags().StringSliceVar(&f.defaults, "default", nil, "the default entity of a type (user, client-id or ip) "+verb)
}

// quotaEntityComponent is one part of an entity; Name is null for the
// type's default.
type quotaEntityComponent struct {
	Type string  `json:"type"`
	Name *string `json:"name"`
}

// components returns the entity the flags name, in Kafka's type order.
func (f *quotaEntityFlags) components(cmd *cobra.Command) ([]quotaEntityComponent, error) {
	var out []quotaEntityComponent
	for _, d := range f.defaults {
		if d != "user" && d != "client-id" && d != "ip" {
			return nil, usageErrorf("--default %q: want user, client-id or ip", d)
		}
	}
	for _, c := range []struct{ typ, flag, value string }{
		{"user", "user", f.user}, {"client-id", "client-id", f.clientID}, {"ip", "ip", f.ip},
	} {
		named, def := cmd.Flags().Changed(c.flag), slices.Contains(f.defaults, c.typ)
		switch {
		case named && def:
			return nil, usageErrorf("--%s and --default %s name the same entity type twice", c.flag, c.typ)
		case named:
			name := c.value
			out = append(out, quotaEntityComponent{Type: c.typ, Name: &name})
		case def:
			out = append(out, quotaEntityComponent{Type: c.typ})
		}
	}
	return out, nil
}

func quotaEntityText(entity []quotaEntityComponent) string {
	parts := make([]string, len(entity))
	for i, c := range entity {
		name := "<default>"
		if c.Name != nil {
			name = *c.Name
		}
		parts[i] = c.Type + "=" + name
	}
	return strings.Join(parts, ",")
}

// describedQuota is one entity's quotas, for --json.
type describedQuota struct {
	Entity []quotaEntityComponent `json:"entity"`
	Values map[string]float64     `json:"values"`
}

func newQuotaDescribeCmd(e *clientEnv) *cobra.Command {
	var (
		flags  quotaEntityFlags
		strict bool
	)
	cmd := &cobra.Command{
		Use:   "describe [--user U] [--client-id C] [--ip I] [--default TYPE]... [--strict]",
		Short: "List client quotas, all of them or those of matching entities",
		Long: "List the quotas set on each entity. Without flags every entity is listed;\n" +
			"--user, --client-id and --ip match a name exactly and --default TYPE the\n" +
			"default entity of the type. Entities with more types than asked for match\n" +
			"too (user=alice matches user=alice,client-id=app) unless --strict.",
		Example: "  sluice quota describe\n" +
			"  sluice quota describe --user alice\n" +
			"  sluice quota describe --default client-id --strict --json",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			filter, err := flags.components(cmd)
			if err != nil {
				return err
			}
			quotas, err := describeQuotas(cmd, e, filter, strict)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), quotas)
			}
			var rows [][]string
			for _, q := range quotas {
				for _, k := range sortedQuotaKeys(q.Values) {
					rows = append(rows, []string{quotaEntityText(q.Entity), k, strconv.FormatFloat(q.Values[k], 'f', -1, 64)})
				}
			}
			return printTable(cmd.OutOrStdout(), []string{"ENTITY", "KEY", "VALUE"}, rows)
		},
	}
	flags.register(cmd, "to match")
	cmd.Flags().BoolVar(&strict, "strict", false, "list only entities with exactly the types given")
	return cmd
}

func sortedQuotaKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func describeQuotas(cmd *cobra.Command, e *clientEnv, filter []quotaEntityComponent, strict bool) ([]describedQuota, error) {
	cl, err := e.client(cmd.Context())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := e.requestContext(cmd.Context())
	defer cancel()
	req := kmsg.NewPtrDescribeClientQuotasRequest()
	req.Strict = strict
	for _, c := range filter {
		rc := kmsg.NewDescribeClientQuotasRequestComponent()
		rc.EntityType, rc.Match = c.Type, c.Name
		rc.MatchType = kmsg.QuotasMatchTypeExact
		if c.Name == nil {
			rc.MatchType = kmsg.QuotasMatchTypeDefault
		}
		req.Components = append(req.Components, rc)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("describe client quotas: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, withBrokerMessage(fmt.Errorf("describe client quotas: %w", err), resp.ErrorMessage)
	}
	out := make([]describedQuota, 0, len(resp.Entries))
	for _, entry := range resp.Entries {
		q := describedQuota{Values: map[string]float64{}}
		for _, ent := range entry.Entity {
			q.Entity = append(q.Entity, quotaEntityComponent{Type: ent.Type, Name: ent.Name})
		}
		for _, v := range entry.Values {
			q.Values[v.Key] = v.Value
		}
		out = append(out, q)
	}
	return out, nil
}

// quotaChange is what `quota alter` did (or, with --validate-only, would
// do), for --json.
type quotaChange struct {
	Entity       []quotaEntityComponent `json:"entity"`
	Set          map[string]float64     `json:"set"`
	Deleted      []string               `json:"deleted"`
	ValidateOnly bool                   `json:"validate_only,omitempty"`
}

func newQuotaAlterCmd(e *clientEnv) *cobra.Command {
	var (
		flags        quotaEntityFlags
		sets         []string
		deletes      []string
		validateOnly bool
	)
	cmd := &cobra.Command{
		Use:   "alter (--user U | --client-id C | --ip I | --default TYPE)... [--set KEY=VALUE]... [--delete KEY]...",
		Short: "Set or delete the quotas of one entity",
		Long: "Set or delete quotas of one entity with AlterClientQuotas. Keys:\n" +
			"producer_byte_rate and consumer_byte_rate (bytes a second) and\n" +
			"request_percentage (percent of one request thread's time) on users, client\n" +
			"ids and their pairs; connection_creation_rate (connections a second) on ips.\n" +
			"The broker refuses an unknown key, a value of 0 or less or a fractional\n" +
			"byte rate with INVALID_REQUEST and its reason; nothing of the entity changes\n" +
			"then, and the exit code is 1. controller_mutation_rate is refused: Sluice\n" +
			"does not enforce it yet.",
		Example: "  sluice quota alter --user alice --set producer_byte_rate=1048576\n" +
			"  sluice quota alter --user alice --default client-id --set request_percentage=50\n" +
			"  sluice quota alter --ip 10.0.0.7 --set connection_creation_rate=5\n" +
			"  sluice quota alter --client-id app --delete consumer_byte_rate --json",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := e.jsonOutput()
			if err != nil {
				return err
			}
			change, err := quotaChangeFromFlags(cmd, &flags, sets, deletes)
			if err != nil {
				return err
			}
			change.ValidateOnly = validateOnly
			if err := alterQuotas(cmd, e, change); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), change)
			}
			return printQuotaChange(cmd, change)
		},
	}
	flags.register(cmd, "to alter")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "a quota to set, KEY=VALUE (repeatable)")
	cmd.Flags().StringArrayVar(&deletes, "delete", nil, "a quota to delete, KEY (repeatable)")
	cmd.Flags().BoolVar(&validateOnly, "validate-only", false, "have the broker check the change without making it")
	return cmd
}

func quotaChangeFromFlags(cmd *cobra.Command, flags *quotaEntityFlags, sets, deletes []string) (quotaChange, error) {
	entity, err := flags.components(cmd)
	if err != nil {
		return quotaChange{}, err
	}
	if len(entity) == 0 {
		return quotaChange{}, usageErrorf("name an entity: --user, --client-id, --ip or --default TYPE")
	}
	if len(sets)+len(deletes) == 0 {
		return quotaChange{}, usageErrorf("nothing to change: give --set KEY=VALUE or --delete KEY")
	}
	change := quotaChange{Entity: entity, Set: map[string]float64{}, Deleted: deletes}
	for _, s := range sets {
		key, value, ok := strings.Cut(s, "=")
		if !ok || key == "" {
			return quotaChange{}, usageErrorf("--set %q: want KEY=VALUE", s)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return quotaChange{}, usageErrorf("--set %s: %q is not a number", key, value)
		}
		change.Set[key] = v
	}
	return change, nil
}

func alterQuotas(cmd *cobra.Command, e *clientEnv, change quotaChange) error {
	cl, err := e.client(cmd.Context())
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := e.requestContext(cmd.Context())
	defer cancel()
	return sendQuotaChange(ctx, cl, change)
}

func sendQuotaChange(ctx context.Context, cl *kgo.Client, change quotaChange) error {
	req := kmsg.NewPtrAlterClientQuotasRequest()
	req.ValidateOnly = change.ValidateOnly
	entry := kmsg.NewAlterClientQuotasRequestEntry()
	for _, c := range change.Entity {
		ent := kmsg.NewAlterClientQuotasRequestEntryEntity()
		ent.Type, ent.Name = c.Type, c.Name
		entry.Entity = append(entry.Entity, ent)
	}
	for _, k := range sortedQuotaKeys(change.Set) {
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Value = k, change.Set[k]
		entry.Ops = append(entry.Ops, op)
	}
	for _, k := range change.Deleted {
		op := kmsg.NewAlterClientQuotasRequestEntryOp()
		op.Key, op.Remove = k, true
		entry.Ops = append(entry.Ops, op)
	}
	req.Entries = append(req.Entries, entry)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("alter client quotas: %w", err)
	}
	if len(resp.Entries) != 1 {
		return fmt.Errorf("alter client quotas: %d entries in the answer, want 1", len(resp.Entries))
	}
	if err := kerr.ErrorForCode(resp.Entries[0].ErrorCode); err != nil {
		return withBrokerMessage(fmt.Errorf("alter client quotas of %s: %w", quotaEntityText(change.Entity), err), resp.Entries[0].ErrorMessage)
	}
	return nil
}

func printQuotaChange(cmd *cobra.Command, change quotaChange) error {
	verb := "Altered"
	if change.ValidateOnly {
		verb = "Validated (not applied)"
	}
	var parts []string
	for _, k := range sortedQuotaKeys(change.Set) {
		parts = append(parts, "set "+k+"="+strconv.FormatFloat(change.Set[k], 'f', -1, 64))
	}
	for _, k := range change.Deleted {
		parts = append(parts, "deleted "+k)
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "%s %s: %s\n", verb, quotaEntityText(change.Entity), strings.Join(parts, ", "))
	return err
}
