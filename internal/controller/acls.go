package controller

import (
	"crypto/sha256"
	"fmt"

	"github.com/sluicelog/sluice/internal/auth"
	"github.com/sluicelog/sluice/internal/metadata"
)

// CreateACLsRequest asks for ACLs to be stored (CreateAcls).
type CreateACLsRequest struct {
	Bindings []auth.Binding
}

// CreateACLsResponse has one result per binding, in request order: nil
// when the ACL is stored (or already was).
type CreateACLsResponse struct {
	Results []error
}

// DeleteACLsRequest asks for every ACL matching any of the filters to be
// removed (DeleteAcls).
type DeleteACLsRequest struct {
	Filters []auth.Filter
}

// DeleteACLsResult is one filter's outcome: the ACLs it matched, which are
// removed, or why the filter was refused.
type DeleteACLsResult struct {
	Err     error
	Deleted []auth.Binding
}

// DeleteACLsResponse has one result per filter, in request order.
type DeleteACLsResponse struct {
	Results []DeleteACLsResult
}

// ACLID is the id an ACL is stored under: a hash of the binding, so the
// same ACL always gets the same id. Creating an ACL that exists then emits
// nothing (Kafka answers it as a success too), and a retried CreateAcls on
// a new controller decides the same way without a random source.
func ACLID(b auth.Binding) metadata.UUID {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%d\x00%s\x00%s\x00%d\x00%d", b.ResourceType, b.ResourceName, b.PatternType,
		b.Principal, b.Host, b.Operation, b.Permission)
	var id metadata.UUID
	copy(id[:], h.Sum(nil))
	return id
}

// CreateACLs decides a CreateAcls request. Each binding stands alone: an
// invalid one fails without stopping the others, as in Kafka.
func (c *Controller) CreateACLs(img *metadata.Image, req CreateACLsRequest) ([]metadata.Record, CreateACLsResponse) {
	resp := CreateACLsResponse{Results: make([]error, len(req.Bindings))}
	var records []metadata.Record
	added := make(map[metadata.UUID]bool)
	for i, b := range req.Bindings {
		if err := b.Validate(); err != nil {
			resp.Results[i] = fmt.Errorf("%w: %w", ErrInvalidRequest, err)
			continue
		}
		id := ACLID(b)
		if _, exists := img.ACL(id); exists || added[id] {
			continue
		}
		added[id] = true
		records = append(records, &metadata.AccessControlEntry{ID: id, Binding: b})
	}
	return records, resp
}

// DeleteACLs decides a DeleteAcls request. An ACL matched by several
// filters is reported under each and removed once.
func (c *Controller) DeleteACLs(img *metadata.Image, req DeleteACLsRequest) ([]metadata.Record, DeleteACLsResponse) {
	resp := DeleteACLsResponse{Results: make([]DeleteACLsResult, len(req.Filters))}
	var records []metadata.Record
	removed := make(map[metadata.UUID]bool)
	for i, f := range req.Filters {
		if err := f.Validate(); err != nil {
			resp.Results[i].Err = fmt.Errorf("%w: %w", ErrInvalidRequest, err)
			continue
		}
		for _, e := range img.ACLs() {
			if !f.Matches(e.Binding) {
				continue
			}
			resp.Results[i].Deleted = append(resp.Results[i].Deleted, e.Binding)
			if !removed[e.ID] {
				removed[e.ID] = true
				records = append(records, &metadata.RemoveAccessControlEntry{ID: e.ID})
			}
		}
	}
	return records, resp
}
