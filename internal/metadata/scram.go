package metadata

import (
	"fmt"
	"slices"
)

// SCRAM credentials (KIP-554). The log holds only what a SCRAM server
// needs to check a client's proof: the salt, the iteration count, and the
// stored and server keys derived from the password. The password itself is
// never recorded, so a copy of the metadata log or a snapshot does not give
// the passwords away (an attacker still has to brute-force each salt).

// Record types of SCRAM credentials. Kafka calls them UserScramCredentialRecord
// and RemoveUserScramCredentialRecord; the numbers are Sluice's own and, like
// every RecordType, on disk.
const (
	TypeUserScramCredential       RecordType = 20
	TypeRemoveUserScramCredential RecordType = 21
)

// ScramMechanism is a SCRAM hash, numbered as Kafka's ScramMechanism enum
// numbers them on the wire (DescribeUserScramCredentials).
type ScramMechanism int8

const (
	ScramSHA256 ScramMechanism = 1
	ScramSHA512 ScramMechanism = 2
)

// String is the SASL mechanism name: SCRAM-SHA-256, SCRAM-SHA-512.
func (m ScramMechanism) String() string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return fmt.Sprintf("SCRAM-UNKNOWN-%d", int8(m))
}

// ParseScramMechanism reads a SASL mechanism name.
func ParseScramMechanism(name string) (ScramMechanism, bool) {
	switch name {
	case "SCRAM-SHA-256":
		return ScramSHA256, true
	case "SCRAM-SHA-512":
		return ScramSHA512, true
	}
	return 0, false
}

// UserScramCredential sets a user's credential for one mechanism,
// replacing the one it had.
type UserScramCredential struct {
	Name       string
	Mechanism  ScramMechanism
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// RemoveUserScramCredential removes a user's credential for one mechanism.
type RemoveUserScramCredential struct {
	Name      string
	Mechanism ScramMechanism
}

func (*UserScramCredential) Type() RecordType       { return TypeUserScramCredential }
func (*RemoveUserScramCredential) Type() RecordType { return TypeRemoveUserScramCredential }

// ScramCredential is a user's stored credential for one mechanism.
type ScramCredential struct {
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int32
}

// scramKey names a credential: a user may have one per mechanism.
type scramKey struct {
	User      string
	Mechanism ScramMechanism
}

// ScramCredential returns user's credential for mechanism.
func (img *Image) ScramCredential(user string, mechanism ScramMechanism) (ScramCredential, bool) {
	c, ok := img.scram[scramKey{user, mechanism}]
	if !ok {
		return ScramCredential{}, false
	}
	return *c, true
}

// ScramUser is a user and the mechanisms it has credentials for, with their
// iteration counts (what DescribeUserScramCredentials may reveal).
type ScramUser struct {
	Name       string
	Mechanisms []ScramMechanism // sorted
	Iterations []int32          // Iterations[i] is Mechanisms[i]'s
}

// ScramUsers returns every user with a SCRAM credential, sorted by name.
func (img *Image) ScramUsers() []ScramUser {
	byName := map[string]*ScramUser{}
	for _, k := range img.sortedScramKeys() {
		u := byName[k.User]
		if u == nil {
			u = &ScramUser{Name: k.User}
			byName[k.User] = u
		}
		u.Mechanisms = append(u.Mechanisms, k.Mechanism)
		u.Iterations = append(u.Iterations, img.scram[k].Iterations)
	}
	users := make([]ScramUser, 0, len(byName))
	for _, name := range sortedKeys(byName) {
		users = append(users, *byName[name])
	}
	return users
}

func (img *Image) sortedScramKeys() []scramKey {
	keys := make([]scramKey, 0, len(img.scram))
	for k := range img.scram {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b scramKey) int {
		if a.User != b.User {
			if a.User < b.User {
				return -1
			}
			return 1
		}
		return int(a.Mechanism) - int(b.Mechanism)
	})
	return keys
}

func (img *Image) appendScramRecords(records []Record) []Record {
	for _, k := range img.sortedScramKeys() {
		c := img.scram[k]
		records = append(records, &UserScramCredential{
			Name: k.User, Mechanism: k.Mechanism, Salt: slices.Clone(c.Salt),
			StoredKey: slices.Clone(c.StoredKey), ServerKey: slices.Clone(c.ServerKey), Iterations: c.Iterations,
		})
	}
	return records
}

// replayUserScramCredential checks what a SCRAM server needs to use the
// credential: a known mechanism, a salt, both keys and a positive count.
func (d *Delta) replayUserScramCredential(r *UserScramCredential) error {
	if r.Name == "" || (r.Mechanism != ScramSHA256 && r.Mechanism != ScramSHA512) ||
		len(r.Salt) == 0 || len(r.StoredKey) == 0 || len(r.ServerKey) == 0 || r.Iterations <= 0 {
		return fmt.Errorf("SCRAM credential of %q (%s): %w", r.Name, r.Mechanism, ErrInvalidRecord)
	}
	d.setScram(scramKey{r.Name, r.Mechanism}, &ScramCredential{
		Salt: r.Salt, StoredKey: r.StoredKey, ServerKey: r.ServerKey, Iterations: r.Iterations,
	})
	return nil
}

// replayRemoveUserScramCredential removes a credential; removing one that
// does not exist is a controller bug, as it checks before it decides.
func (d *Delta) replayRemoveUserScramCredential(r *RemoveUserScramCredential) error {
	k := scramKey{r.Name, r.Mechanism}
	if c, changed := d.scram[k]; (changed && c == nil) || (!changed && d.base.scram[k] == nil) {
		return fmt.Errorf("remove SCRAM credential of %q (%s): %w", r.Name, r.Mechanism, ErrInvalidRecord)
	}
	d.setScram(k, nil)
	return nil
}

func (d *Delta) setScram(k scramKey, c *ScramCredential) {
	if d.scram == nil {
		d.scram = make(map[scramKey]*ScramCredential)
	}
	d.scram[k] = c
}

func appendScramRecord(w *fieldWriter, r Record) bool {
	switch r := r.(type) {
	case *UserScramCredential:
		w.string(0, r.Name)
		w.int(1, int64(r.Mechanism))
		w.string(2, string(r.Salt))
		w.string(3, string(r.StoredKey))
		w.string(4, string(r.ServerKey))
		w.int(5, int64(r.Iterations))
	case *RemoveUserScramCredential:
		w.string(0, r.Name)
		w.int(1, int64(r.Mechanism))
	default:
		return false
	}
	return true
}

func decodeUserScramCredential(r *fieldReader) Record {
	rec := &UserScramCredential{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.Name = r.string()
		case 1:
			rec.Mechanism = ScramMechanism(r.int8())
		case 2:
			rec.Salt = []byte(r.string())
		case 3:
			rec.StoredKey = []byte(r.string())
		case 4:
			rec.ServerKey = []byte(r.string())
		case 5:
			rec.Iterations = r.int32()
		}
	}
	return rec
}

func decodeRemoveUserScramCredential(r *fieldReader) Record {
	rec := &RemoveUserScramCredential{}
	for r.next() {
		switch r.tag {
		case 0:
			rec.Name = r.string()
		case 1:
			rec.Mechanism = ScramMechanism(r.int8())
		}
	}
	return rec
}
