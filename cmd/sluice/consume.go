package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newConsumeCmd is a placeholder until the consume commands land.
func newConsumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "consume",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("not built yet") },
	}
}
