package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/sluicelog/sluice/internal/config"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// completionTimeout bounds the cluster look-up behind a Tab press: a shell
// that hangs on completion is worse than one that offers nothing.
const completionTimeout = 2 * time.Second

// completeTopics offers the cluster's topic names (internal ones only when
// the word typed so far starts with "__") for a command's positional
// arguments. With no broker reachable it offers nothing.
func completeTopics(e *clientEnv) cobra.CompletionFunc {
	return completeNames(e, func(ctx context.Context, e *clientEnv) []string {
		adm, err := e.admin(ctx)
		if err != nil {
			return nil
		}
		defer adm.Close()
		topics, err := adm.ListTopicsWithInternal(ctx)
		if err != nil {
			return nil
		}
		return topics.Names()
	})
}

// completeGroups offers the cluster's consumer group names.
func completeGroups(e *clientEnv) cobra.CompletionFunc {
	return completeNames(e, func(ctx context.Context, e *clientEnv) []string {
		adm, err := e.admin(ctx)
		if err != nil {
			return nil
		}
		defer adm.Close()
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			return nil
		}
		return groups.Groups()
	})
}

// completeNames wraps a cluster look-up as a completion. Errors are
// swallowed on purpose: a completion cannot print, and offering nothing is
// the shell's way of saying "no suggestions". Internal names (__...) are
// offered only when the user has typed the underscores, so Tab on a fresh
// word lists the user's own topics.
func completeNames(e *clientEnv, list func(context.Context, *clientEnv) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, completionTimeout)
		defer cancel()
		// A copy with the short timeout: the user's --timeout (10 s by
		// default) is right for a command, far too long for a Tab press.
		quick := *e
		quick.timeout = completionTimeout
		var out []string
		for _, name := range list(ctx, &quick) {
			// Names already on the line are not offered again: a second
			// `topic delete a a` would only fail on the repeat.
			if slices.Contains(args, name) || !strings.HasPrefix(name, toComplete) {
				continue
			}
			if strings.HasPrefix(name, "__") && !strings.HasPrefix(toComplete, "__") {
				continue
			}
			out = append(out, name)
		}
		slices.Sort(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// Flag values offered on Tab, as "value\tdescription" for the shells that
// show descriptions.
var (
	offsetValues = []string{
		"start\tthe first record (default)", "beginning\tthe first record", "earliest\tthe first record",
		"oldest\tthe first record", "end\tonly new records", "latest\tonly new records",
		"newest\tonly new records", "stored\tthe group's committed offsets (with -g)",
		"-10\tthe last 10 per partition", "@\ta time: @MS or @RFC3339",
	}
	compressionValues = []string{"none", "gzip", "snappy", "lz4", "zstd"}
	acksValues        = []string{"all\tevery in-sync replica", "1\tthe leader only", "0\tno acknowledgement"}
	outputValues      = []string{"text", "json"}
	atValues          = []string{"start\tthe log start offsets", "end\tthe high watermarks", "@\ta time: @MS or RFC 3339"}
	electionValues    = []string{"preferred", "unclean"}
)

// The values of the acl commands' --operation and --resource-pattern-type.
var (
	aclOperationValues = []string{"all", "read", "write", "create", "delete", "alter", "describe", "cluster-action",
		"describe-configs", "alter-configs", "idempotent-write"}
	aclPatternValues = []string{"literal", "prefixed", "match", "any"}
)

// registerFlagCompletions walks the command tree and registers value
// completions by flag name, so a flag declared in any file (produce's
// --compression, bench's --acks, the client flags) completes the same
// way wherever it appears. A completion a command registered itself (the
// broker keys of cluster config set --delete) is kept.
func registerFlagCompletions(cmd *cobra.Command) {
	register := func(f *pflag.Flag) {
		if fn := flagValueCompletion(cmd, f); fn != nil {
			if _, ok := cmd.GetFlagCompletionFunc(f.Name); !ok {
				_ = cmd.RegisterFlagCompletionFunc(f.Name, fn)
			}
		}
	}
	cmd.Flags().VisitAll(register)
	cmd.PersistentFlags().VisitAll(register)
	for _, sub := range cmd.Commands() {
		registerFlagCompletions(sub)
	}
}

// flagValueCompletion returns the completion for f's values on cmd, or nil.
func flagValueCompletion(cmd *cobra.Command, f *pflag.Flag) cobra.CompletionFunc {
	// Matched by flag name across the tree, with the command where one
	// name means different things (--set is a topic key under `topic`, a
	// broker key under `serve`; --offset is a spec on consume, a number on
	// topic trim).
	inTopic := cmd.Parent() != nil && cmd.Parent().Name() == "topic"
	switch {
	case f.Name == "offset" && f.Value.Type() == "string": // consume's; topic trim's is a number
		return fixedValues(offsetValues...)
	case f.Name == "compression":
		return fixedValues(compressionValues...)
	case f.Name == "acks":
		return fixedValues(acksValues...)
	case f.Name == "output":
		return fixedValues(outputValues...)
	case f.Name == "at":
		return fixedValues(atValues...)
	case f.Name == "type" && cmd.Name() == "elect-leaders":
		return fixedValues(electionValues...)
	case f.Name == "operation":
		return fixedValues(aclOperationValues...)
	case f.Name == "resource-pattern-type":
		return fixedValues(aclPatternValues...)
	case f.Name == "profile":
		return completeProfiles
	case inTopic && (f.Name == "config" || f.Name == "set"):
		return completeTopicConfigKeys("=")
	case inTopic && f.Name == "delete":
		return completeTopicConfigKeys("")
	case f.Name == "set" && (cmd.Name() == "serve" || cmd.Name() == "cluster"):
		return completeConfigKeys(false, "=") // serve --set, dev cluster --set: any broker key
	}
	return nil
}

// fixedValues offers those of values that start with the word typed.
func fixedValues(values ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, v := range values {
			if strings.HasPrefix(v, toComplete) {
				out = append(out, v)
			}
		}
		// "@" is the start of a value, not a value: no space after it, so
		// the user types the time straight on.
		directive := cobra.ShellCompDirectiveNoFileComp
		if len(out) == 1 && strings.HasPrefix(out[0], "@") {
			directive |= cobra.ShellCompDirectiveNoSpace
		}
		return out, directive
	}
}

// completeTopicConfigKeys offers the topic config keys, each followed by
// suffix ("=" where a value follows).
func completeTopicConfigKeys(suffix string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		var out []string
		for _, def := range config.TopicConfigs {
			if strings.HasPrefix(def.Name, toComplete) {
				out = append(out, def.Name+suffix)
			}
		}
		directive := cobra.ShellCompDirectiveNoFileComp
		if suffix != "" {
			directive |= cobra.ShellCompDirectiveNoSpace
		}
		return out, directive
	}
}
