package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newClusterCmd is a placeholder until the cluster commands land.
func newClusterCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "cluster",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("not built yet") },
	}
}
