package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// newTopicCmd is a placeholder until the topic commands land.
func newTopicCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "topic",
		Hidden: true,
		RunE:   func(*cobra.Command, []string) error { return errors.New("not built yet") },
	}
}
