package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// printJSON writes v as indented JSON followed by a newline: one document
// per command, so `sluice ... --json | jq` works.
//
// A list is never null: nil slices (and maps) are encoded empty, so a
// script can iterate `.partitions[]` or take `length` without checking
// for null first, however the command built its result.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if v == nil {
		return enc.Encode(v)
	}
	return enc.Encode(withEmptyLists(reflect.ValueOf(v)).Interface())
}

// withEmptyLists returns a copy of v in which every nil slice or map that
// encoding/json would reach is an empty one. Pointers stay nil (a null
// there means "not known", as a sensitive config value); []byte is left
// alone. Fields that cannot be set by reflection (those of an unexported
// embedded struct) are copied as they are.
func withEmptyLists(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v
		}
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(withEmptyLists(v.Index(i)))
		}
		return out
	case reflect.Array:
		out := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			out.Index(i).Set(withEmptyLists(v.Index(i)))
		}
		return out
	case reflect.Map:
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), withEmptyLists(it.Value()))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(withEmptyLists(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(withEmptyLists(v.Elem()))
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if f := out.Field(i); f.CanSet() {
				f.Set(withEmptyLists(v.Field(i)))
			}
		}
		return out
	}
	return v
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
