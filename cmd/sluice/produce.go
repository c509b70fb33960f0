package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newProduceCmd is a placeholder until the produce commands land.
func newProduceCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "produce",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("not built yet") },
	}
}
