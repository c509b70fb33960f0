package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// printJSON writes v as indented JSON followed by a newline: one document
// per command, so `sluice ... --json | jq` works.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable writes rows under headers as aligned columns for people.
// An empty cell prints as "-" so columns stay readable.
func printTable(w io.Writer, headers []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(headers, "\t"))
	for _, row := range rows {
		cells := make([]string, len(row))
		for i, c := range row {
			if c == "" {
				c = "-"
			}
			cells[i] = c
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// printFields writes name/value pairs as an aligned two-column list, for
// one object (a topic's summary, a cluster's identity).
func printFields(w io.Writer, pairs ...[2]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, p := range pairs {
		fmt.Fprintf(tw, "%s:\t%s\n", p[0], p[1])
	}
	return tw.Flush()
}

// printDeleted reports what a delete command removed ({"deleted": [...]}
// with --json) and returns the failures for the rest, joined.
func printDeleted(cmd *cobra.Command, asJSON bool, kind string, deleted []string, failures []error) error {
	if asJSON {
		if err := printJSON(cmd.OutOrStdout(), map[string][]string{"deleted": deleted}); err != nil {
			return err
		}
	} else {
		for _, name := range deleted {
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s %s\n", kind, name)
		}
	}
	return errors.Join(failures...)
}
