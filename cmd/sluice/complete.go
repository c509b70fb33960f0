package main

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
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

func completeNames(e *clientEnv, list func(context.Context, *clientEnv) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, completionTimeout)
		defer cancel()
		quick := *e
		quick.timeout = completionTimeout
		var out []string
		for _, name := range list(ctx, &quick) {
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
