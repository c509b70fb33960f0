package api

import (
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicelog/sluice/internal/metrics"
	"github.com/sluicelog/sluice/internal/wire"
)

// APIKeyNames names every API key this broker serves, as Kafka's request
// metrics label them (Produce, Fetch, ...).
func APIKeyNames() map[int16]string {
	names := make(map[int16]string, len(handlers))
	for _, h := range handlers {
		names[h.key] = kmsg.NameForKey(h.key)
	}
	return names
}

func (b *Broker) requestMetrics() *metrics.Requests {
	if b.Metrics == nil {
		return nil
	}
	return b.Metrics.Requests
}

// topicMetrics are the counters of topic; nil (counting nothing) when the
// broker has no metrics.
func (b *Broker) topicMetrics(topic string) *metrics.TopicCounters {
	if b.Metrics == nil {
		return nil
	}
	return b.Metrics.Topics.Topic(topic)
}

// errorName is the Kafka name of an error code, as the error label shows
// it (UNKNOWN_TOPIC_OR_PARTITION).
func errorName(code int16) string {
	var ke *kerr.Error
	if errors.As(kerr.ErrorForCode(code), &ke) && ke.Code == code {
		return ke.Message
	}
	return metrics.ErrorName(code)
}

// observeRequest counts a served request, its time, and the error codes of
// its response (resp may be nil: no response, or a hand-framed one whose
// handler counted its own codes in r). A request that failed to be served
// at all (the connection is closed) counts as the error its cause maps to:
// INVALID_REQUEST for a frame that did not parse.
func (b *Broker) observeRequest(key int16, took time.Duration, r *Request, resp kmsg.Response, err error) {
	m := b.requestMetrics()
	if m == nil {
		return
	}
	m.Served(key, took)
	switch {
	case errors.Is(err, errCloseAfterResponse):
		// The response was sent and carries the code; counted below.
	case err != nil && errors.Is(err, wire.ErrMalformed):
		m.Error(key, kerr.InvalidRequest.Message, 1)
	case err != nil:
		m.Error(key, errorName(errorCode(err)), 1)
	}
	var counts errorCounts
	if r != nil {
		counts = r.errors
	}
	if resp != nil {
		countResponseErrors(reflect.ValueOf(resp), &counts)
	}
	for code, n := range counts {
		m.Error(key, errorName(code), n)
	}
}

// errorCounts counts error codes by code; nil until the first error, so a
// clean response allocates nothing.
type errorCounts map[int16]int

func (c *errorCounts) add(code int16) {
	if code == 0 {
		return
	}
	if *c == nil {
		*c = errorCounts{}
	}
	(*c)[code]++
}

// countResponseErrors adds every non-zero ErrorCode field of a response,
// at any depth (top level, per topic, per partition), as Kafka's
// errorCounts does per response type. The fields to visit are worked out
// once per type, so a walk is field indexing and no lookups.
func countResponseErrors(v reflect.Value, counts *errorCounts) {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return
	}
	errorPlanFor(v.Type()).walk(v, counts)
}

// errorPlan is where a struct type keeps error codes: its own ErrorCode
// fields, and the struct and slice-of-struct fields that hold some, with
// their own plans.
type errorPlan struct {
	codes   []int
	structs []fieldPlan
	slices  []fieldPlan
}

type fieldPlan struct {
	index int
	plan  *errorPlan
}

func (p *errorPlan) walk(v reflect.Value, counts *errorCounts) {
	for _, i := range p.codes {
		counts.add(int16(v.Field(i).Int()))
	}
	for _, f := range p.structs {
		f.plan.walk(v.Field(f.index), counts)
	}
	for _, f := range p.slices {
		s := v.Field(f.index)
		for j := range s.Len() {
			f.plan.walk(s.Index(j), counts)
		}
	}
}

func (p *errorPlan) empty() bool { return len(p.codes)+len(p.structs)+len(p.slices) == 0 }

var errorPlans sync.Map // reflect.Type -> *errorPlan

func errorPlanFor(t reflect.Type) *errorPlan {
	if p, ok := errorPlans.Load(t); ok {
		return p.(*errorPlan)
	}
	p := buildErrorPlan(t, map[reflect.Type]bool{})
	errorPlans.Store(t, p)
	return p
}

// buildErrorPlan works out t's plan; visiting holds the types being
// worked out further up, so a type that contains itself ends the descent.
func buildErrorPlan(t reflect.Type, visiting map[reflect.Type]bool) *errorPlan {
	visiting[t] = true
	defer delete(visiting, t)
	p := &errorPlan{}
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16:
			p.codes = append(p.codes, i)
		case f.Type.Kind() == reflect.Struct && !visiting[f.Type]:
			if sub := buildErrorPlan(f.Type, visiting); !sub.empty() {
				p.structs = append(p.structs, fieldPlan{i, sub})
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct && !visiting[f.Type.Elem()]:
			if sub := buildErrorPlan(f.Type.Elem(), visiting); !sub.empty() {
				p.slices = append(p.slices, fieldPlan{i, sub})
			}
		}
	}
	return p
}
