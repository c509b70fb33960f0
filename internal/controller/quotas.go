package controller

import (
	"fmt"
	"math"
	"slices"

	"github.com/sluicelog/sluice/internal/metadata"
)

// QuotaOp sets one quota key of an entity, or with Remove removes it.
type QuotaOp struct {
	Key    string
	Value  float64
	Remove bool
}

// AlterClientQuotasEntry changes the quotas of one entity.
type AlterClientQuotasEntry struct {
	Entity []metadata.QuotaEntityPart
	Ops    []QuotaOp
}

// AlterClientQuotasRequest is Kafka's AlterClientQuotas; ValidateOnly
// checks without emitting records.
type AlterClientQuotasRequest struct {
	Entries      []AlterClientQuotasEntry
	ValidateOnly bool
}

// AlterClientQuotasResult is one entry's outcome, in request order.
type AlterClientQuotasResult struct {
	Entity []metadata.QuotaEntityPart
	Err    error
}

// AlterClientQuotasResponse has one result per entry.
type AlterClientQuotasResponse struct {
	Entries []AlterClientQuotasResult
}

// integerQuotaKeys are the keys Kafka types as long or int: a fractional
// byte rate or connection rate is refused, as Kafka refuses it.
var integerQuotaKeys = []string{
	metadata.QuotaProducerByteRate, metadata.QuotaConsumerByteRate, metadata.QuotaConnectionCreationRate,
}

// unenforcedQuotaKeys are keys Kafka has that Sluice does not enforce
// yet; they are refused rather than stored and silently ignored.
var unenforcedQuotaKeys = map[string]string{
	metadata.QuotaControllerMutationRate: "Sluice does not throttle CreateTopics, CreatePartitions and DeleteTopics yet",
}

// AlterClientQuotas decides an AlterClientQuotas request: each entry is
// checked whole (Kafka's rules: a known entity, keys of that entity,
// values above 0, integers where Kafka's key is an integer, each key once)
// and either all its records are emitted or none. Errors are
// ErrInvalidRequest, which Kafka answers with INVALID_REQUEST.
func (c *Controller) AlterClientQuotas(img *metadata.Image, req AlterClientQuotasRequest) ([]metadata.Record, AlterClientQuotasResponse) {
	resp := AlterClientQuotasResponse{Entries: make([]AlterClientQuotasResult, len(req.Entries))}
	var records []metadata.Record
	for i, entry := range req.Entries {
		resp.Entries[i].Entity = entry.Entity
		recs, err := alterClientQuotasEntry(entry)
		if err != nil {
			resp.Entries[i].Err = err
			continue
		}
		if !req.ValidateOnly {
			records = append(records, recs...)
		}
	}
	return records, resp
}

func alterClientQuotasEntry(entry AlterClientQuotasEntry) ([]metadata.Record, error) {
	entity, err := metadata.QuotaEntityFromParts(entry.Entity)
	if err != nil {
		return nil, withKind(ErrInvalidRequest, err)
	}
	allowed := metadata.QuotaKeysFor(entity)
	seen := map[string]bool{}
	records := make([]metadata.Record, 0, len(entry.Ops))
	for _, op := range entry.Ops {
		if err := checkQuotaOp(entity, allowed, op); err != nil {
			return nil, err
		}
		if seen[op.Key] {
			return nil, fmt.Errorf("%w: quota %q of %s given twice", ErrInvalidRequest, op.Key, entity)
		}
		seen[op.Key] = true
		records = append(records, &metadata.ClientQuota{Entity: entity.Parts(), Key: op.Key, Value: op.Value, Remove: op.Remove})
	}
	return records, nil
}

func checkQuotaOp(entity metadata.QuotaEntity, allowed []string, op QuotaOp) error {
	if !slices.Contains(allowed, op.Key) {
		return fmt.Errorf("%w: unknown quota key %q for %s (valid: %v)", ErrInvalidRequest, op.Key, entity, allowed)
	}
	if why, ok := unenforcedQuotaKeys[op.Key]; ok && !op.Remove {
		return fmt.Errorf("%w: quota %q is refused: %s", ErrInvalidRequest, op.Key, why)
	}
	if op.Remove {
		return nil
	}
	switch {
	case math.IsNaN(op.Value) || math.IsInf(op.Value, 0):
		return fmt.Errorf("%w: quota %s=%v is not a number", ErrInvalidRequest, op.Key, op.Value)
	case op.Value <= 0:
		return fmt.Errorf("%w: quota %s=%v must be greater than 0", ErrInvalidRequest, op.Key, op.Value)
	case slices.Contains(integerQuotaKeys, op.Key) && (op.Value != math.Trunc(op.Value) || op.Value > math.MaxInt64):
		return fmt.Errorf("%w: quota %s=%v must be an integer", ErrInvalidRequest, op.Key, op.Value)
	}
	return nil
}
