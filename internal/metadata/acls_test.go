package metadata

import (
	"testing"

	"github.com/sluicelog/sluice/internal/auth"
)

func sampleBinding(name string) auth.Binding {
	return auth.Binding{ResourceType: auth.ResourceTopic, ResourceName: name, PatternType: auth.PatternLiteral,
		Principal: "User:alice", Host: "*", Operation: auth.OpRead, Permission: auth.PermissionAllow}
}

func TestImageACLsReplayAndRemove(t *testing.T) {
	img := apply(t, EmptyImage(),
		&AccessControlEntry{ID: uuid(2), Binding: sampleBinding("b")},
		&AccessControlEntry{ID: uuid(1), Binding: sampleBinding("a")})
	acls := img.ACLs()
	require(t, len(acls) == 2 && acls[0].ID == uuid(1) && acls[1].ResourceName == "b", "ACLs() = %+v, want sorted by id", acls)
	require(t, len(img.ACLBindings()) == 2, "ACLBindings() = %v", img.ACLBindings())

	next := apply(t, img, &RemoveAccessControlEntry{ID: uuid(1)})
	_, ok := next.ACL(uuid(1))
	require(t, !ok && len(next.ACLs()) == 1, "removed ACL still there: %+v", next.ACLs())
	require(t, len(img.ACLs()) == 2, "the base image changed")

	// Snapshots carry the ACLs.
	snap, err := DecodeSnapshot(AppendSnapshot(nil, next))
	requireNoError(t, err)
	requireEqual(t, snap.ACLs(), next.ACLs())

	last := apply(t, next, &RemoveAccessControlEntry{ID: uuid(2)})
	require(t, last.ACLs() == nil, "empty ACL list is %v, want nil", last.ACLs())
}

func TestImageACLsRefused(t *testing.T) {
	img := apply(t, EmptyImage(), &AccessControlEntry{ID: uuid(1), Binding: sampleBinding("a")})
	_, err := replayErr(t, img, &AccessControlEntry{ID: uuid(1), Binding: sampleBinding("other")})
	requireErrorIs(t, err, ErrInvalidRecord)
	_, err = replayErr(t, img, &RemoveAccessControlEntry{ID: uuid(7)})
	requireErrorIs(t, err, ErrUnknownACL)
	bad := sampleBinding("a")
	bad.PatternType = auth.PatternMatch
	_, err = replayErr(t, img, &AccessControlEntry{ID: uuid(3), Binding: bad})
	requireErrorIs(t, err, ErrInvalidRecord)
	_, err = replayErr(t, img, &AccessControlEntry{Binding: sampleBinding("z")})
	requireErrorIs(t, err, ErrInvalidRecord)
	// Removed and re-added in one batch.
	d, err := replayErr(t, img, &RemoveAccessControlEntry{ID: uuid(1)}, &AccessControlEntry{ID: uuid(1), Binding: sampleBinding("a")})
	requireNoError(t, err)
	require(t, len(d.Apply(5).ACLs()) == 1, "re-added ACL missing")
}
