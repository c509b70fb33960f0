// Package config defines Sluice's configuration keys with Kafka's names,
// types, defaults and valid values, and validates values against them.
//
// The tables here are the single source of truth: the controller validates
// CreateTopics and AlterConfigs with them, and DescribeConfigs (defaults,
// types), the log's per-topic settings (TopicValues) and the generated
// configuration docs (Doc, Accepted) are to read them too. A key that is
// not in a table does not exist.
//
// It sits under internal/log: its tables and values import nothing of
// Sluice's, and only the broker config loader (load.go) reads a file,
// through internal/vfs, so anything from the log up may depend on it.
package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ErrUnknownConfig: the key names no config of that resource type.
var ErrUnknownConfig = errors.New("unknown config")

// ErrInvalidConfigValue: the value does not parse as the key's type or is
// outside its valid values.
var ErrInvalidConfigValue = errors.New("invalid config value")

// Type is a config's value type, numbered as Kafka's DescribeConfigs
// config_type field numbers them, so the edge can copy it through.
type Type int8

const (
	TypeBoolean Type = 1
	TypeString  Type = 2
	TypeInt     Type = 3 // 32-bit
	TypeLong    Type = 5 // 64-bit
	TypeDouble  Type = 6
	TypeList    Type = 7 // comma-separated, items trimmed
)

// String names the type as Kafka's documentation does.
func (t Type) String() string {
	switch t {
	case TypeBoolean:
		return "boolean"
	case TypeString:
		return "string"
	case TypeInt:
		return "int"
	case TypeLong:
		return "long"
	case TypeDouble:
		return "double"
	case TypeList:
		return "list"
	}
	return fmt.Sprintf("Type(%d)", int8(t))
}

// Range is an inclusive interval of valid integers; Min == Max admits a
// single special value (compression.gzip.level's -1).
type Range struct{ Min, Max int64 }

// Def is one config key's definition.
type Def struct {
	Name string
	// BrokerName is the broker config that sets the cluster-wide default
	// for this key (Kafka's "Server Default Property"); a topic override
	// wins over it.
	BrokerName string
	Type       Type
	// Default is the built-in default as DescribeConfigs reports it.
	Default string
	// Doc is one line for the generated documentation.
	Doc string
	// Ranges bound TypeInt and TypeLong values (any range may match); none
	// means every value of the type.
	Ranges []Range
	// MinDouble and MaxDouble bound TypeDouble values.
	MinDouble, MaxDouble float64
	// Values are the accepted values of a TypeString, or the accepted
	// items of a TypeList; none means anything. Matching is exact, as in
	// Kafka (CreateTime, not createtime).
	Values []string
	// Deprecated says what replaces the key; the key still works.
	Deprecated string
	// NotActedOn says why a key is accepted (so Kafka tooling that sets it
	// keeps working) but changes nothing yet; empty when Sluice honours it.
	// The generated reference shows it, so users are not misled.
	NotActedOn string
	// Refused is a value that parses but that Sluice does not implement:
	// it is refused (INVALID_CONFIG at create/alter time, an error at
	// start-up) rather than accepted and ignored.
	Refused *Refusal
}

// Refusal is a refused value and why it is refused.
type Refusal struct{ Value, Why string }

// refuses says whether value is d's refused value, compared as the type
// parses it (TRUE is true).
func (d *Def) refuses(value string) bool {
	if d.Refused == nil {
		return false
	}
	if d.Type == TypeBoolean {
		got, ok := parseBool(value)
		refused, _ := parseBool(d.Refused.Value)
		return ok && got == refused
	}
	return strings.TrimSpace(value) == d.Refused.Value
}

// Validate checks value against the definition. The error wraps
// ErrInvalidConfigValue and names the key and the accepted form.
func (d *Def) Validate(value string) error {
	if d.valid(value) {
		return nil
	}
	if d.refuses(value) {
		return fmt.Errorf("%w: %s=%q is refused: %s", ErrInvalidConfigValue, d.Name, value, d.Refused.Why)
	}
	return fmt.Errorf("%w: %s=%q: want %s", ErrInvalidConfigValue, d.Name, value, d.Accepted())
}

func (d *Def) valid(value string) bool {
	return d.parses(value) && !d.refuses(value)
}

func (d *Def) parses(value string) bool {
	switch d.Type {
	case TypeBoolean:
		_, ok := parseBool(value)
		return ok
	case TypeInt, TypeLong:
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, d.bits())
		return err == nil && d.inRanges(n)
	case TypeDouble:
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		return err == nil && !math.IsNaN(f) && f >= d.MinDouble && f <= d.MaxDouble
	case TypeString:
		return len(d.Values) == 0 || slices.Contains(d.Values, value)
	case TypeList:
		return d.validList(value)
	}
	return false
}

func (d *Def) bits() int {
	if d.Type == TypeInt {
		return 32
	}
	return 64
}

func (d *Def) inRanges(n int64) bool {
	if len(d.Ranges) == 0 {
		return true
	}
	for _, r := range d.Ranges {
		if n >= r.Min && n <= r.Max {
			return true
		}
	}
	return false
}

// validList accepts a non-empty list of distinct allowed items. Kafka's
// older validators let "delete,delete" and "" through; both are mistakes
// a user would want to hear about, and newer Kafka rejects them too.
func (d *Def) validList(value string) bool {
	items := SplitList(value)
	if len(items) == 0 {
		return false
	}
	for i, item := range items {
		if item == "" || slices.Contains(items[:i], item) {
			return false
		}
		if len(d.Values) > 0 && !slices.Contains(d.Values, item) {
			return false
		}
	}
	return true
}

// Accepted describes the accepted values in words, for error messages and
// the documentation.
func (d *Def) Accepted() string {
	if d.Refused != nil {
		return d.accepted() + "; " + d.Refused.Value + " is refused: " + d.Refused.Why
	}
	return d.accepted()
}

func (d *Def) accepted() string {
	switch d.Type {
	case TypeBoolean:
		return "true or false"
	case TypeInt, TypeLong:
		return d.acceptedIntegers()
	case TypeDouble:
		return fmt.Sprintf("a number in [%g, %g]", d.MinDouble, d.MaxDouble)
	case TypeString:
		if len(d.Values) == 0 {
			return "a string"
		}
		return "one of " + strings.Join(d.Values, ", ")
	case TypeList:
		if len(d.Values) == 0 {
			return "a comma-separated list"
		}
		return "a comma-separated list of " + strings.Join(d.Values, ", ")
	}
	return "nothing"
}

func (d *Def) acceptedIntegers() string {
	if len(d.Ranges) == 0 {
		return "an integer"
	}
	parts := make([]string, len(d.Ranges))
	for i, r := range d.Ranges {
		switch {
		case r.Min == r.Max:
			parts[i] = strconv.FormatInt(r.Min, 10)
		case r.Max == math.MaxInt64:
			parts[i] = fmt.Sprintf("an integer ≥ %d", r.Min)
		default:
			parts[i] = fmt.Sprintf("an integer in [%d, %d]", r.Min, r.Max)
		}
	}
	return strings.Join(parts, " or ")
}

// SplitList splits a list value on commas and trims each item, as Kafka
// parses LIST configs; the empty string is the empty list.
func SplitList(value string) []string {
	if strings.TrimSpace(value) == "" {
		return nil
	}
	items := strings.Split(value, ",")
	for i := range items {
		items[i] = strings.TrimSpace(items[i])
	}
	return items
}

// parseBool accepts true and false in any case, with surrounding spaces,
// as Kafka's ConfigDef does.
func parseBool(value string) (b, ok bool) {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}
