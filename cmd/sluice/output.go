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
	"github.com/twmb/franz-go/pkg/kerr"
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
		// An empty cell would shift the eye to the next column when
		// read by column; "-" holds its place, as kubectl and ps do.
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

// nameFailure is one name (a topic, a group, a partition of a topic) that
// a command acting on several could not act on. --json output lists one
// per failed name next to what succeeded, so a script sees a partial
// failure in the document it parses, not only in the exit code and on
// stderr. Error is the message stderr shows; ErrorCode is the Kafka error
// code when the broker gave one, for scripts that branch on it.
type nameFailure struct {
	Topic     string `json:"topic,omitempty"`
	Partition *int32 `json:"partition,omitempty"`
	Group     string `json:"group,omitempty"`
	Error     string `json:"error"`
	ErrorCode string `json:"error_code,omitempty"`
	err       error  // as returned, for errors.Is and the exit code
}

// failedTopic, failedGroup and failedPartition build a nameFailure from the
// error already worded for stderr.
func failedTopic(topic string, err error) nameFailure {
	return nameFailure{Topic: topic, Error: err.Error(), ErrorCode: kafkaErrorCode(err), err: err}
}

func failedGroup(group string, err error) nameFailure {
	return nameFailure{Group: group, Error: err.Error(), ErrorCode: kafkaErrorCode(err), err: err}
}

func failedPartition(topic string, partition int32, err error) nameFailure {
	return nameFailure{Topic: topic, Partition: &partition, Error: err.Error(), ErrorCode: kafkaErrorCode(err), err: err}
}

// kafkaErrorCode is the name of the Kafka error code err wraps
// ("UNKNOWN_TOPIC_OR_PARTITION"), or "" when no broker chose one (a
// timeout, a refused connection, a check made here).
func kafkaErrorCode(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return ""
}

// failureErrors turns the failures back into the error the command
// returns, joined, so the exit code is 1 when any name failed.
func failureErrors(failures []nameFailure) error {
	errs := make([]error, len(failures))
	for i, f := range failures {
		errs[i] = f.err
	}
	return errors.Join(errs...)
}

// printDeleted reports what a delete command removed and what it could
// not: {"deleted": [...], "errors": [{"topic"|"group", "error",
// "error_code"}]} with --json (both lists always present), a line per
// deleted name otherwise. It returns the failures, joined, for stderr and
// the exit code.
func printDeleted(cmd *cobra.Command, asJSON bool, kind string, deleted []string, failures []nameFailure) error {
	if asJSON {
		doc := struct {
			Deleted []string      `json:"deleted"`
			Errors  []nameFailure `json:"errors"`
		}{deleted, failures}
		if err := printJSON(cmd.OutOrStdout(), doc); err != nil {
			return err
		}
	} else {
		for _, name := range deleted {
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %s %s\n", kind, name)
		}
	}
	return failureErrors(failures)
}
