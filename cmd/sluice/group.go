package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newGroupCmd is a placeholder until the group commands land.
func newGroupCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "group",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("not built yet") },
	}
}
