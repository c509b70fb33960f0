package metadata

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/sluicelog/sluice/internal/auth"
)

// ACLs in the image: a map by id for replay, and the list sorted by id
// that readers (DescribeAcls, the authorizer built per image) take whole.
// ACLs change rarely, so Apply rebuilds the list when one changes.

// ACL returns the ACL stored under id.
func (img *Image) ACL(id UUID) (AccessControlEntry, bool) {
	e, ok := img.acls[id]
	return e, ok
}

// ACLs returns every ACL, sorted by id. Callers must not modify it.
func (img *Image) ACLs() []AccessControlEntry { return img.aclList }

// ACLBindings returns the bindings of every ACL, sorted by ACL id.
func (img *Image) ACLBindings() []auth.Binding {
	bindings := make([]auth.Binding, len(img.aclList))
	for i, e := range img.aclList {
		bindings[i] = e.Binding
	}
	return bindings
}

// acl returns the ACL as the delta sees it.
func (d *Delta) acl(id UUID) (*AccessControlEntry, bool) {
	if e, ok := d.acls[id]; ok {
		return e, e != nil
	}
	e, ok := d.base.acls[id]
	return &e, ok
}

func (d *Delta) setACL(id UUID, e *AccessControlEntry) {
	if d.acls == nil {
		d.acls = make(map[UUID]*AccessControlEntry)
	}
	d.acls[id] = e
}

func (d *Delta) replayAccessControlEntry(r *AccessControlEntry) error {
	if r.ID == (UUID{}) {
		return fmt.Errorf("acl %s: zero id: %w", r.Binding, ErrInvalidRecord)
	}
	if err := r.Binding.Validate(); err != nil {
		return fmt.Errorf("acl %s: %w: %w", r.Binding, ErrInvalidRecord, err)
	}
	if old, ok := d.acl(r.ID); ok {
		return fmt.Errorf("acl %s: id %v holds %s: %w", r.Binding, r.ID, old.Binding, ErrInvalidRecord)
	}
	e := *r
	d.setACL(r.ID, &e)
	return nil
}

func (d *Delta) replayRemoveAccessControlEntry(r *RemoveAccessControlEntry) error {
	if _, ok := d.acl(r.ID); !ok {
		return fmt.Errorf("remove acl %v: %w", r.ID, ErrUnknownACL)
	}
	d.setACL(r.ID, nil)
	return nil
}

// applyACLs sets img's ACLs from the base's and the delta's changes.
func (d *Delta) applyACLs(img *Image) {
	m := make(map[UUID]AccessControlEntry, len(d.base.acls)+len(d.acls))
	for id, e := range d.base.acls {
		m[id] = e
	}
	for id, e := range d.acls {
		if e == nil {
			delete(m, id)
		} else {
			m[id] = *e
		}
	}
	if len(m) == 0 {
		img.acls, img.aclList = nil, nil
		return
	}
	list := make([]AccessControlEntry, 0, len(m))
	for _, e := range m {
		list = append(list, e)
	}
	slices.SortFunc(list, func(a, b AccessControlEntry) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	img.acls, img.aclList = m, list
}

func appendAccessControlEntry(w *fieldWriter, r *AccessControlEntry) {
	w.uuid(0, r.ID)
	w.int(1, int64(r.ResourceType))
	w.string(2, r.ResourceName)
	w.int(3, int64(r.PatternType))
	w.string(4, r.Principal)
	w.string(5, r.Host)
	w.int(6, int64(r.Operation))
	w.int(7, int64(r.Permission))
}

func decodeAccessControlEntry(r *fieldReader) Record {
	rec := &AccessControlEntry{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.ID = r.uuid()
		case 1:
			rec.ResourceType = auth.ResourceType(r.int8())
		case 2:
			rec.ResourceName = r.string()
		case 3:
			rec.PatternType = auth.PatternType(r.int8())
		case 4:
			rec.Principal = r.string()
		case 5:
			rec.Host = r.string()
		case 6:
			rec.Operation = auth.Operation(r.int8())
		case 7:
			rec.Permission = auth.Permission(r.int8())
		}
	}
	return rec
}

func decodeRemoveAccessControlEntry(r *fieldReader) Record {
	rec := &RemoveAccessControlEntry{}
	for r.next() {
		if r.tag == 0 {
			rec.ID = r.uuid()
		}
	}
	return rec
}
